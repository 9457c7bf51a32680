from maild.admin.cli import main

main()
