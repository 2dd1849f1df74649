from lbreport.launch import main

main()
