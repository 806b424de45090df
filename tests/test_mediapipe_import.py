"""reenact.face.mediapipe_tasks: MediaPipe imports without matplotlib (0.33 s of every start), and matplotlib
stays whole for whoever imports it afterwards. Each check runs in a fresh interpreter."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from conftest import ROOT


def _run(code: str) -> str:
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return res.stdout.strip()


def test_faces_are_found_without_importing_matplotlib():
    out = _run("""
        import sys
        from reenact.face.pipeline import FacePipeline
        from reenact.io import read_image
        with FacePipeline() as faces:
            found = faces.faces(read_image("examples/source.png"))
        print(len(found), "matplotlib" in sys.modules, "matplotlib.pyplot" in sys.modules)
    """)
    assert out == "1 False False"


def test_matplotlib_imported_afterwards_is_the_real_one_and_mediapipe_s_plotting_reaches_it():
    out = _run("""
        import sys, types
        from reenact.face.mediapipe_tasks import tasks
        tasks()
        from mediapipe.tasks.python.vision import drawing_utils
        deferred = type(drawing_utils.plt).__name__
        import matplotlib.pyplot as plt
        real = type(sys.modules["matplotlib"]) is types.ModuleType and type(plt) is types.ModuleType
        print(deferred, real, drawing_utils.plt.figure is plt.figure, hasattr(sys.modules["matplotlib"], "__version__"))
    """)
    assert out == "_Deferred True True True"


def test_a_matplotlib_already_imported_is_what_mediapipe_gets():
    out = _run("""
        import matplotlib.pyplot as plt
        from reenact.face.mediapipe_tasks import tasks
        tasks()
        from mediapipe.tasks.python.vision import drawing_utils
        print(drawing_utils.plt is plt)
    """)
    assert out == "True"
