"""Reading and writing image objects in a cluster, or in a file that holds them."""
