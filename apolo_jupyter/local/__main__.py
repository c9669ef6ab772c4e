import sys

from ._daemon import main

main(sys.argv[1:])
