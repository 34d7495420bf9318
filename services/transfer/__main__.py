from services.transfer.main import main

main()
