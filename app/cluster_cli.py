"""``dwb parse --cluster``: the batch parse spread over a Ray cluster (see inference/batch/cluster.py)."""

from __future__ import annotations

import argparse
from typing import Any

from inference.errors import ConfigError


def add_cluster_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("Ray cluster (pip install 'diffusion-workbench[cluster]')")
    group.add_argument(
        "--cluster",
        metavar="auto|ray://HOST:PORT",
        help="spread the documents over a Ray cluster with the builtin or remote engine: auto joins "
        "the cluster this machine belongs to, ray://HOST:PORT reaches its Ray Client port",
    )
    group.add_argument(
        "--cluster-retries",
        type=int,
        default=2,
        metavar="N",
        help="runs of a document after its worker died (default 2); then it is listed as failed",
    )


def parse_on_cluster(
    args: argparse.Namespace, formats: tuple[str, ...], options: Any, on_item: Any, params: dict[str, Any]
) -> Any:
    from inference.batch.cluster import BuiltinSpec, check_address, run_parse_cluster

    check_address(args.cluster)
    kind = args.engine or ("model" if args.model else "builtin")
    if kind == "builtin":
        spec: Any = BuiltinSpec()
    elif kind == "remote":
        from app.remote_cli import remote_spec

        spec = remote_spec(args, params)
    else:
        raise ConfigError(
            "--cluster runs the builtin or the remote engine, not --engine model",
            hint="Serve the model on the GPU machines (dwb serve or vLLM), then add --engine remote --base-url URL.",
        )
    return run_parse_cluster(
        args.inputs,
        args.out,
        spec,
        formats=formats,
        per_page=args.per_page,
        force=args.force,
        options=options,
        address=args.cluster,
        retries=args.cluster_retries,
        verbose=args.verbose,
        on_item=on_item,
    )
