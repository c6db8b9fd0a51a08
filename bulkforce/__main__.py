from bulkforce.cli import main

main()
