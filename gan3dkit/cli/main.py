"""The `gan3dkit` command: one Typer app whose groups follow the stages (prepare -> data -> ...)."""

from __future__ import annotations

import typer

from . import convert as convert_cmds
from . import data as data_cmds
from . import distill as distill_cmds
from . import edit as edit_cmds
from . import encode as encode_cmds
from . import env as env_cmds
from . import evaluate as evaluate_cmds
from . import generate as generate_cmds
from . import invert as invert_cmds
from . import prepare as prepare_cmds
from . import quickstart as quickstart_cmds
from . import train as train_cmds
from . import view as view_cmds
from . import weights as weights_cmds

app = typer.Typer(
    name="gan3dkit",
    help="3D-aware GAN toolkit: datasets with cameras, EG3D-style training, inversion and evaluation.\n\n"
    "Example: gan3dkit prepare synthetic --family heads --num 256 --resolution 64 --out heads.lmdb",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _options(
    debug: bool = typer.Option(
        False, "--debug", help="Show the full traceback of an error instead of the one-line message (bug reports)."
    ),
) -> None:
    # Read back by cli.common.debug_enabled from the click context (no global switch).
    pass


app.add_typer(prepare_cmds.app, name="prepare")
app.add_typer(data_cmds.app, name="data")
app.add_typer(convert_cmds.app, name="convert")
app.add_typer(weights_cmds.app, name="weights")
app.command("train")(train_cmds.train)
app.command("generate")(generate_cmds.generate)
app.command("edit")(edit_cmds.edit)
app.command("invert")(invert_cmds.invert)
app.command("distill-encoder")(distill_cmds.distill_encoder)
app.command("encode")(encode_cmds.encode)
app.command("evaluate")(evaluate_cmds.evaluate)
app.command("train-probe")(evaluate_cmds.train_probe)
app.command("env")(env_cmds.env)
app.command("quickstart")(quickstart_cmds.quickstart)
app.command("view")(view_cmds.view)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
