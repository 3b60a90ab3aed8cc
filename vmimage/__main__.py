from vmimage.cli import main

main(prog_name="vmimage")
