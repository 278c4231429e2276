"""The log's routes against a real ``writ serve`` on both databases, and the ``writ proof`` /
``writ verify-proof`` / ``writ checkpoint cosign`` commands in their own processes."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from infrastructure.checkpoints import Signer
from infrastructure.notes import Note, sign
from infrastructure.witness import witness_key
from tests.http_support import Server, server, token
from tests.support import writ_command

__all__ = ["server"]  # the fixture

SEED = base64.b64encode(b"r" * 32).decode()
SIGNING = {"WRIT_SIGNING_KEY": SEED}
SIGNER = Signer(Ed25519PrivateKey.from_private_bytes(b"r" * 32))
OFFLINE = {"WRIT_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nothing"}
AUDITOR = token("ann", "acme", "auditor")


def checkpoint(server: Server) -> dict[str, Any]:
    """``writ checkpoint --json``'s line, or {} when nothing was saved since the last (the server is shared)."""
    done = writ_command(
        "checkpoint", "--json", env={"WRIT_DATABASE_URL": server.database_url, **SIGNING}
    )
    return orjson.loads(done.stdout) if done.stdout.strip() else {}  # type: ignore[no-any-return]


def resigned(checkpoint_note: str, seed: bytes) -> str:
    """The same checkpoint text, signed by another key under the same name."""
    text = checkpoint_note.partition("\n\n")[0] + "\n"
    origin = text.split("\n")[0]
    return str(Note(text, (sign(text, origin, Ed25519PrivateKey.from_private_bytes(seed)),)))


def created(server: Server, sku: str, bearer: str | None = None) -> dict[str, Any]:
    response = server.call("POST", "/v1/Order", json={"sku": sku, "total": "5"}, bearer=bearer)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def verify_offline(tmp_path: Path, proof: dict[str, Any], key: str, *extra: str) -> Any:
    path = tmp_path / "proof.json"
    path.write_bytes(orjson.dumps(proof))
    return writ_command(
        "verify-proof", str(path), "--public-key", key, *extra, check=False, env=OFFLINE
    )


def test_checkpoint_and_proofs_over_http_verify_offline(server: Server, tmp_path: Path) -> None:
    order = created(server, "LOG-1")
    signed = checkpoint(server)
    latest = server.call("GET", "/v1/log/checkpoint")
    assert latest.status_code == 200 and latest.json()["tree_size"] >= signed["tree_size"]
    assert latest.json()["checkpoint"].startswith(latest.json()["origin"] + "\n")
    at = server.call("GET", "/v1/log/checkpoint", params={"tree_size": signed["tree_size"]}).json()
    assert at["checkpoint"] == signed["note"] and at["root"] == signed["root"]
    proof = server.call(
        "GET",
        "/v1/log/proof/inclusion",
        params={
            "model": "Order",
            "id": order["id"],
            "version": 1,
            "tree_size": signed["tree_size"],
        },
    )
    assert proof.status_code == 200, proof.text
    assert (
        proof.json()["leaf"]["record_id"] == order["id"]
        and proof.json()["leaf"]["position"] == order["position"]
    )
    done = verify_offline(tmp_path, proof.json(), signed["vkey"])
    assert done.returncode == 0 and done.stdout.startswith("verified: leaf"), (
        done.stdout + done.stderr
    )
    raw = base64.b64encode(base64.b64decode(signed["vkey"].split("+")[2])[1:]).decode()
    assert verify_offline(tmp_path, proof.json(), raw).returncode == 0
    wrong = verify_offline(tmp_path, proof.json(), base64.b64encode(b"\x01" * 32).decode())
    assert wrong.returncode == 1 and wrong.stdout.startswith(
        "refused: the checkpoint is not signed by the given key"
    )
    mallory = Signer(Ed25519PrivateKey.from_private_bytes(b"m" * 32))
    forged = {
        **proof.json(),
        "checkpoint": resigned(proof.json()["checkpoint"], b"m" * 32),
        "public_key": base64.b64encode(mallory.public_raw).decode(),
        "vkey": mallory.note_key("x").vkey,
    }
    # a key the proof brings is not trusted
    assert verify_offline(tmp_path, forged, signed["vkey"]).returncode == 1
    grown = server.call("GET", "/v1/log/proof/consistency", params={"old_size": 1})
    assert (
        grown.status_code == 200
        and verify_offline(tmp_path, grown.json(), signed["vkey"]).returncode == 0
    )


def test_another_tenants_record_is_not_found_and_bad_arguments_are_400(server: Server) -> None:
    theirs = created(server, "LOG-THEIRS", bearer=token("olga", "globex"))
    checkpoint(server)
    params = {"model": "Order", "id": theirs["id"], "version": 1}
    assert (
        server.call("GET", "/v1/log/proof/inclusion", params=params).json()["code"] == "NOT_FOUND"
    )
    assert server.call("GET", "/v1/log/proof/inclusion", params=params).status_code == 404
    mine = server.call(
        "GET", "/v1/log/proof/inclusion", params=params, bearer=token("olga", "globex")
    )
    assert mine.status_code == 200, mine.text
    for bad in (
        {"model": "Order", "id": theirs["id"]},
        {**params, "version": "x"},
        {**params, "version": "0"},
        {**params, "tree_size": "99999999999999999999"},
        {**params, "tree_size": "999999"},
    ):
        response = server.call(
            "GET", "/v1/log/proof/inclusion", params=bad, bearer=token("olga", "globex")
        )
        assert response.status_code == 400 and response.json()["code"] == "INVALID_INPUT", (
            bad,
            response.text,
        )
    assert server.call("GET", "/v1/log/proof/consistency").status_code == 400
    assert (
        server.call("GET", "/v1/log/proof/consistency", params={"old_size": 10**15}).status_code
        == 400
    )
    unauthenticated = server.client.get("/v1/log/checkpoint")
    assert (
        unauthenticated.status_code == 401 and unauthenticated.json()["code"] == "UNAUTHENTICATED"
    )


def test_a_new_event_is_not_checkpointed_until_the_next_checkpoint(server: Server) -> None:
    checkpoint(server)
    order = created(server, "LOG-LATE")
    params = {"model": "Order", "id": order["id"], "version": 1}
    waiting = server.call("GET", "/v1/log/proof/inclusion", params=params)
    assert waiting.status_code == 409 and waiting.json()["code"] == "NOT_CHECKPOINTED"
    checkpoint(server)
    assert server.call("GET", "/v1/log/proof/inclusion", params=params).status_code == 200


def test_cli_proofs_respect_the_tenant_and_verify_with_witnesses(
    server: Server, tmp_path: Path
) -> None:
    order = created(server, "LOG-CLI")
    signed = checkpoint(server)
    env = {"WRIT_DATABASE_URL": server.database_url, "WRIT_CATALOG": str(catalog_file(tmp_path))}
    other = writ_command(
        "proof",
        "inclusion",
        "Order",
        order["id"],
        "1",
        "-u",
        "olga",
        "-t",
        "globex",
        "-r",
        "clerk",
        check=False,
        env=env,
    )
    assert other.returncode == 2 and other.stderr.startswith("error: NOT_FOUND"), other.stderr
    proved = writ_command(
        "proof",
        "inclusion",
        "Order",
        order["id"],
        "1",
        "-u",
        "ann",
        "-t",
        "acme",
        "-r",
        "clerk",
        env=env,
    )
    proof = orjson.loads(proved.stdout)
    (tmp_path / "w1.key").write_text(base64.b64encode(b"1" * 32).decode())
    (tmp_path / "w2.key").write_text(base64.b64encode(b"2" * 32).decode())
    witnesses = []
    for name in ("w1", "w2"):
        done = writ_command(
            "checkpoint",
            "cosign",
            "--log-key",
            signed["vkey"],
            "--key",
            str(tmp_path / f"{name}.key"),
            "--name",
            f"witness.example/{name}",
            "--seen",
            str(tmp_path / f"{name}.seen"),
            env=env,
        )
        witnesses.append(orjson.loads(done.stdout)["witness"])
    cosigned = writ_command(
        "proof",
        "inclusion",
        "Order",
        order["id"],
        "1",
        "-u",
        "ann",
        "-t",
        "acme",
        "-r",
        "clerk",
        env=env,
    )
    proof = orjson.loads(cosigned.stdout)
    two = ("--witness", witnesses[0], "--witness", witnesses[1])
    assert verify_offline(tmp_path, proof, signed["vkey"], *two).returncode == 0
    stranger = witness_key(b"3" * 32, "witness.example/w3")[1].vkey  # a witness that did not cosign
    refused = verify_offline(tmp_path, proof, signed["vkey"], *two, "--witness", stranger)
    assert refused.returncode == 1 and "2 of the given witnesses cosigned" in refused.stdout, (
        refused.stdout
    )
    assert (
        verify_offline(
            tmp_path, proof, signed["vkey"], *two, "--witness", stranger, "--quorum", "2"
        ).returncode
        == 0
    )
    malformed = verify_offline(
        tmp_path, proof, signed["vkey"], "--witness", "witness.example/w3+00000000+BAAA"
    )
    assert malformed.returncode == 2 and malformed.stderr.startswith("error: INVALID_INPUT"), (
        malformed.stderr
    )


def catalog_file(tmp_path: Path) -> Path:
    from tests.http_support import CATALOG

    path = tmp_path / "writ.toml"
    path.write_text(CATALOG)
    return path


def test_a_witness_refuses_a_checkpoint_that_does_not_extend_what_it_saw(
    server: Server, tmp_path: Path
) -> None:
    created(server, "LOG-W")
    created(server, "LOG-W1")
    checkpoint(server)
    signed = server.call("GET", "/v1/log/checkpoint").json()
    env = {"WRIT_DATABASE_URL": server.database_url}
    (tmp_path / "w.key").write_text(base64.b64encode(b"w" * 32).decode())
    seen = tmp_path / "seen.txt"
    log_key = Ed25519PrivateKey.from_private_bytes(base64.b64decode(SEED))
    origin, size = signed["origin"], signed["tree_size"]
    forged_root = base64.b64encode(b"\x01" * 32).decode()
    cosign = (
        "checkpoint",
        "cosign",
        "--log-key",
        base64.b64encode(SIGNER.public_raw).decode(),
        "--key",
        str(tmp_path / "w.key"),
        "--name",
        "witness.example/w",
        "--seen",
        str(seen),
    )
    text, _, line = signed["checkpoint"].partition("\n\n")
    for why, note in (
        ("does not verify", f"{origin}\n{size}\n{forged_root}\n\n{line}"),
        (
            "two different roots were signed",
            str(
                Note(
                    f"{origin}\n{size}\n{forged_root}\n",
                    (sign(f"{origin}\n{size}\n{forged_root}\n", origin, log_key),),
                )
            ),
        ),
        (
            "does not lead to both roots",
            str(
                Note(
                    f"{origin}\n{size - 1}\n{forged_root}\n",
                    (  # a fork
                        sign(f"{origin}\n{size - 1}\n{forged_root}\n", origin, log_key),
                    ),
                )
            ),
        ),
        (
            "went back",
            str(
                Note(
                    f"{origin}\n{size + 5}\n{forged_root}\n",
                    (sign(f"{origin}\n{size + 5}\n{forged_root}\n", origin, log_key),),
                )
            ),
        ),
        (
            "witness follows",
            str(
                Note(
                    f"other.example/log\n{size}\n{forged_root}\n",
                    (
                        sign(
                            f"other.example/log\n{size}\n{forged_root}\n",
                            "other.example/log",
                            log_key,
                        ),
                    ),
                )
            ),
        ),
    ):
        seen.write_text(note)
        done = writ_command(*cosign, check=False, env=env)
        assert (
            done.returncode == 2 and "CHECKPOINT_REFUSED" in done.stderr and why in done.stderr
        ), (why, done.stderr)
    seen.unlink()
    # the first cosignature, with nothing seen yet: the checkpoint must still be the given log key's
    stranger = Signer(Ed25519PrivateKey.from_private_bytes(b"x" * 32)).public_raw
    refused = writ_command(
        *cosign[:3], base64.b64encode(stranger).decode(), *cosign[4:], check=False, env=env
    )
    assert (
        refused.returncode == 2
        and "CHECKPOINT_REFUSED" in refused.stderr
        and "not signed by the given key" in refused.stderr
    ), refused.stderr
    assert not seen.exists(), "nothing cosigned, nothing kept as seen"
    assert writ_command(*cosign, env=env).returncode == 0
    assert seen.read_text().startswith(text + "\n\n")
    # the same checkpoint again: still consistent
    assert writ_command(*cosign, env=env).returncode == 0
    created(server, "LOG-W2")
    checkpoint(server)
    # a larger one, proved consistent with what it saw
    assert writ_command(*cosign, env=env).returncode == 0
