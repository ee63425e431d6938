from envbuild.entry import main

main()
