from reenact.cli.main import main

main()
