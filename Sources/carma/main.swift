print("carma")
