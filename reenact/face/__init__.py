"""Face detection, landmarks, crops, 3D fits (FaceFit), smoothing and motion transfer."""
