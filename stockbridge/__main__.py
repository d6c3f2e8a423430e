from stockbridge.cli.main import main

main()
