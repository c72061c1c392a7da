from sipctl.entry import main

main()
