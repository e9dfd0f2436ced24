"""`python -m gan3dkit` = the `gan3dkit` command (also what `torchrun -m gan3dkit train ...` runs)."""

from gan3dkit.cli.main import main

main()
