from stockbridge.cli import main

main()
