from search.report.cli import main

main()
