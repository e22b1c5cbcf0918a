from doseport.cli import main

main()
