from services.scanner.main import main

main()
