from services.conflicts.main import main

main()
