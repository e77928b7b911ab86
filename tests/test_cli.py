"""`sf2t info` reports the real build; sf2t imports and runs without its compiled extension."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from sf2t import _ext


def _run(code_or_args, *, module=False):
    cmd = [sys.executable, "-m", "sf2t.cli", *code_or_args] if module else [sys.executable, "-c", code_or_args]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


def test_info_json_reports_the_build():
    info = json.loads(_run(["info", "--json"], module=True))
    assert info["torch"] == torch.__version__
    assert info["torch_cuda"] == torch.version.cuda
    assert info["extension_loaded"] == _ext.is_loaded()
    assert "reference" in info["backends"]["fragment_pack"]["cpu"]
    assert set(info["decoders"]) == {"torchcodec", "pyav", "dali"}
    kernels = info["backends"]["fragment_pack"]["gpu_kernels"]
    assert kernels["cuda"] == os.environ.get("SF2T_FRAGMENT_PACK_CUDA", "two_pass")
    assert kernels["triton"] == os.environ.get("SF2T_FRAGMENT_PACK_TRITON", "two_pass")
    if _ext.is_loaded():
        build = _ext.build_info()
        assert info["build"]["torch"] == build["torch"] == torch.__version__
        assert info["build"]["sources_sha256"] == build["sources_sha256"]
        assert "cpp" in info["backends"]["fragment_pack"]["cpu"]
        assert info["backends"]["yuv420_to_rgb"]["chosen_cpu"] == "cpp"
        assert info["cuda_kernels_compiled"] == bool(build["with_cuda"])


def test_info_text_mentions_versions_and_backends():
    out = _run(["info"], module=True)
    assert f"torch {torch.__version__}" in out
    assert "op fragment_pack" in out and "decoders:" in out and "device:" in out


def test_import_without_extension_works_and_compiled_path_explains_the_fix():
    code = r"""
import sys, importlib.abc
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name == "sf2t._C":
            raise ImportError("simulated: extension not built")
sys.meta_path.insert(0, Block())
import torch, sf2t
from sf2t import _ext
from sf2t.ops import fragment_pack
assert not _ext.is_loaded() and "simulated" in _ext.load_error()
frames = torch.zeros(1, 28, 28, 3, dtype=torch.uint8)
out, grid = fragment_pack(frames, torch.tensor([0]), None, (28, 28))   # auto -> reference
assert out.shape == (4, 1176), out.shape
try:
    fragment_pack(frames, torch.tensor([0]), None, (28, 28), backend="cpp")
except _ext.ExtensionError as e:
    assert "pip install -e . --no-build-isolation" in str(e), e
    assert str(e).startswith("fragment_pack backend 'cpp' needs the compiled extension, but "), e
    print("OK")
"""
    assert "OK" in _run(code)


def test_stale_build_is_reported(monkeypatch):
    info = dict(_ext.build_info() or {"sources_sha256": "x"})
    info["torch"] = "0.0.1"
    info["sources_sha256"] = "0" * 64
    monkeypatch.setattr(_ext, "build_info", lambda: info)
    reasons = _ext.stale_reasons()
    assert any("built against torch 0.0.1" in r for r in reasons)
    if (_ext._PKG.parent / "csrc").is_dir():
        assert any("csrc/ changed" in r for r in reasons)


def _interrupted(*a, **k):
    raise KeyboardInterrupt


def test_ctrl_c_is_one_line_and_exit_130_in_every_command(tmp_path, capsys, monkeypatch):
    """Ctrl-C in any sf2t command prints one line (no traceback) and exits 130, as `sf2t train` and `sf2t eval` do:
    index while it lists the files, demo, throughput, info (the commands without their own message get
    `sf2t COMMAND: interrupted`)."""
    import sf2t.demo as demo
    import sf2t.video.find as find
    import sf2t.video.index as index
    from sf2t import cli

    def check(argv, words):
        assert cli.main(argv) == 130
        err = capsys.readouterr().err
        assert "Traceback" not in err and words in err, err
        assert len(err.strip().splitlines()) == 1, err

    (tmp_path / "v").mkdir()
    with monkeypatch.context() as m:
        m.setattr(index, "find_files", _interrupted)  # before any file is probed (index_paths reads it here)
        m.setattr(find, "expand_video_entries", _interrupted)  # (throughput's --videos: files, folders, manifests)
        # a first run stopped before its first save: no manifest to go on from
        check(["index", str(tmp_path / "v"), "-o", str(tmp_path / "m.jsonl"), "--quiet"], "nothing was saved yet")
        (tmp_path / "m.jsonl").write_text("")
        check(["index", str(tmp_path / "v"), "-o", str(tmp_path / "m.jsonl"), "--quiet"], "holds what was last saved")
        (tmp_path / "a.mp4").write_bytes(b"")
        check(["throughput", "--videos", str(tmp_path / "a.mp4")], "sf2t throughput: interrupted")
    with monkeypatch.context() as m:
        m.setattr(demo, "run_demo", _interrupted)
        check(["demo", "--out", str(tmp_path / "demo")], "sf2t demo: interrupted")
    with monkeypatch.context() as m:
        m.setattr(cli, "collect_info", _interrupted)
        check(["info"], "sf2t info: interrupted")


def test_train_without_a_checkpoint_folder_names_a_download_command_that_exists(tmp_path, capsys, monkeypatch):
    """``sf2t train model=X`` where X is no folder: a Hub id gets the download command of the installed
    huggingface_hub (``hf download``; its 2.x has no ``huggingface-cli``), and a path (the README's
    ``model=./Qwen2-VL-2B-Instruct``) is said to be no folder instead of being offered to the Hub as a repo id."""
    from sf2t import cli

    monkeypatch.chdir(tmp_path)
    hf = Path(sys.executable).parent / "hf"
    assert hf.is_file() or shutil.which("hf"), "the hint's command is not installed"
    assert cli.main(["train", "model=Qwen/Qwen2-VL-2B-Instruct"]) == 2
    err = capsys.readouterr().err
    assert "`hf download Qwen/Qwen2-VL-2B-Instruct --local-dir ./ckpt`" in err and "Traceback" not in err
    assert cli.main(["train", "model=./Qwen2-VL-2B-Instruct", "videos=[a.mp4]"]) == 2
    err = capsys.readouterr().err
    assert "'./Qwen2-VL-2B-Instruct' is not a local directory (no such folder)" in err
    assert "--local-dir ./Qwen2-VL-2B-Instruct" in err and "download ./" not in err


def test_command_warnings_sf2t_one_line_others_untouched_rank_0_only(capsys, monkeypatch):
    """Under the `sf2t` command (sf2t._warn.cli_warnings): a warning of sf2t's code is one line, `sf2t COMMAND:
    warning: MESSAGE`; another package's goes to the handler that was there (Python's format); a torchrun rank other
    than 0 shows neither; the handler is put back after."""
    import warnings

    import sf2t
    from sf2t._warn import cli_warnings, command_name

    assert command_name([]) == command_name(["--help"]) == "sf2t"
    assert command_name(["train", "steps=1"]) == "sf2t train"
    assert command_name(["tasks", "export", "--out", "d"]) == "sf2t tasks export"
    assert command_name(["finevidbench", "build"]) == "sf2t finevidbench build"
    ours = os.path.join(os.path.dirname(sf2t.__file__), "video", "dali.py")
    theirs = os.path.join(os.path.dirname(torch.__file__), "serialization.py")
    for rank, shown in (("0", True), ("3", False)):
        monkeypatch.setenv("RANK", rank)
        passed = []
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warnings.showwarning = lambda *a, seen=passed, **k: seen.append(a[:4])
            before = warnings.showwarning
            with cli_warnings("sf2t train"):
                warnings.warn_explicit("left out 2 records,\n  see the report", UserWarning, ours, 10)
                warnings.warn_explicit("torch says", FutureWarning, theirs, 5)
            assert warnings.showwarning is before
        err = capsys.readouterr().err
        assert err == ("sf2t train: warning: left out 2 records, see the report\n" if shown else ""), err
        assert [(str(m), c, f) for m, c, f, _ in passed] == ([("torch says", FutureWarning, theirs)] if shown else [])


def test_train_other_ranks_quiet_library_logs(monkeypatch):
    """`sf2t train` under torchrun (sf2t._warn.quiet_other_ranks): a rank other than 0 shows no transformers, peft or
    torch.distributed messages below error level and no transformers progress bar (N ranks printed N copies); errors
    still show; rank 0 is untouched; the levels are put back after."""
    import logging

    from transformers.utils import logging as hf_logging

    from sf2t import cli
    from sf2t._warn import quiet_other_ranks
    from sf2t.train import cli as train_cli

    names = ("transformers.modeling_utils", "peft.tuners", "torch.distributed.distributed_c10d")

    def state():
        loggers = [hf_logging.get_logger(names[0]), *(logging.getLogger(n) for n in names[1:])]
        return [(g.isEnabledFor(logging.WARNING), g.isEnabledFor(logging.ERROR)) for g in loggers] + [
            hf_logging.is_progress_bar_enabled()
        ]

    before = state()
    assert before == [(True, True)] * 3 + [True]  # (the defaults: warnings and bars shown)
    seen = {}

    def train_main(argv):
        seen["state"] = state()
        return 0

    monkeypatch.setattr(train_cli, "train_main", train_main)
    for rank, inside in (("0", before), ("2", [(False, True)] * 3 + [False])):
        monkeypatch.setenv("RANK", rank)
        with quiet_other_ranks():
            assert state() == inside, rank
        assert state() == before
        seen.clear()  # the command's path: `sf2t train` runs inside it
        assert cli.main(["train", "steps=1"]) == 0 and seen["state"] == inside, rank
        assert state() == before


def test_a_closed_stdout_pipe_exits_quietly():
    """``sf2t train --print-config | head -1`` once head has gone (stdout a pipe with no reader): exit 1 as Python's
    "Note on SIGPIPE" does, nothing on stderr (it was ``sf2t train: Broken pipe``, an error the user did not make)."""
    r, w = os.pipe()
    os.close(r)  # the reader gone before the first write
    try:
        res = subprocess.run(
            [sys.executable, "-m", "sf2t.cli", "train", "--print-config"],
            stdout=w,
            stderr=subprocess.PIPE,
            text=True,
            timeout=300,
        )
    finally:
        os.close(w)
    assert res.returncode == 1 and res.stderr == "", (res.returncode, res.stderr[-3000:])


def test_only_file_os_errors_are_one_line(capsys, monkeypatch):
    """An OSError that stops a command is one line, exit 1, when it is the user's files or disk: it names a file, has
    a file or disk errno (ENOSPC without a file: a write to an open file), or is transformers' own "cannot load"
    message (several lines, joined). Others keep their traceback, not disguised as a file error: a programming error
    (io.UnsupportedOperation, EBADF, an OSError with no errno raised by sf2t), ENOMEM, a refused connection, a
    BrokenPipeError from a pipe that is not stdout (a worker that died)."""
    import errno
    import io
    import socket

    import pytest

    from sf2t import cli

    def failing(e):
        def run(*a, **k):
            raise e

        return run

    def one_line(e, said):
        monkeypatch.setattr(cli, "collect_info", failing(e))
        assert cli.main(["info"]) == 1
        err = capsys.readouterr().err
        assert err == f"sf2t info: {said}\n", err

    one_line(OSError(errno.ENOSPC, "No space left on device"), "No space left on device")
    one_line(PermissionError(errno.EACCES, "Permission denied", "/x/y"), "/x/y: Permission denied")
    one_line(OSError(errno.EINVAL, "Invalid argument", "/x/y", None, "/z"), "/x/y -> /z: Invalid argument")

    def transformers_load(*a, **k):
        import transformers

        transformers.AutoConfig.from_pretrained("sf2t-test/no-such-model", local_files_only=True)

    monkeypatch.setattr(cli, "collect_info", transformers_load)
    assert cli.main(["info"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("sf2t info: ") and len(err.splitlines()) == 1 and "Traceback" not in err, err

    for e in (
        io.UnsupportedOperation("fileno"),
        OSError(errno.EBADF, "Bad file descriptor"),
        OSError("a message of sf2t's own"),
        OSError(errno.ENOMEM, "Cannot allocate memory"),
        ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
        socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
        BrokenPipeError(errno.EPIPE, "Broken pipe"),  # stdout (pytest's capture) takes writes: not `| head`
    ):
        monkeypatch.setattr(cli, "collect_info", failing(e))
        with pytest.raises(type(e)):
            cli.main(["info"])
        assert capsys.readouterr().err == "", e


@pytest.mark.parametrize("command", ["demo", "finevidbench export", "throughput", "train"])
def test_an_unsupported_operation_is_no_bad_input(command, tmp_path, capsys, monkeypatch):
    """io.UnsupportedOperation is a ValueError and an OSError both: raised by a bug (``fileno`` of a pipe or a
    StringIO) inside a command's ``except ValueError`` (a bad input: one line, exit 2), it keeps its traceback (it was
    ``sf2t demo: fileno``, exit 2: sf2t._oserror.is_bad_input). A ValueError from the same place is still one line."""
    import io

    from sf2t import _files, cli
    from sf2t.video import index

    out = tmp_path / "out"
    bench = tmp_path / "b.json"
    argv = {
        "demo": ["demo", "--out", str(out)],
        "finevidbench export": ["finevidbench", "export", "--bench", str(bench), "--format", "lmms-eval"],
        "throughput": ["throughput", "--videos", str(tmp_path), "--seconds", "1"],
        "train": ["train", f"model={tmp_path}", f"videos=[{tmp_path / 'v.mp4'}]", f"out_dir={out}"],
    }[command]
    argv += ["--out", str(out)] if command == "finevidbench export" else []

    def failing(e):
        def run(*a, **k):
            raise e

        return run

    for e in (io.UnsupportedOperation("fileno"), ValueError("a bad input")):
        # (the first thing each command does with the files it was given)
        monkeypatch.setattr(_files, "check_out_folder", failing(e))
        monkeypatch.setattr(index, "expand_videos", failing(e))
        capsys.readouterr()
        if isinstance(e, OSError):
            with pytest.raises(io.UnsupportedOperation):
                cli.main(argv)
            assert "fileno" not in capsys.readouterr().err
        else:
            assert cli.main(argv) == 2
            err = capsys.readouterr().err
            assert err.startswith(f"sf2t {command}: ") and err.endswith("a bad input\n") and len(err.splitlines()) == 1


@pytest.mark.parametrize(
    "argv, typed, meant",
    [
        (["index", "videos", "--ouput", "m.jsonl"], "--ouput", "--out"),  # was: "-o/--out is required"
        (["index", "videos", "-o", "m.jsonl", "--verfy"], "--verfy", "--verify"),  # was: the top parser's usage
        (["tasks", "export", "--manifest", "m.jsonl", "--out", "ds", "--nmu", "3"], "--nmu", "--num"),
        (["tasks", "preview", "--manifest", "m.jsonl", "--tsk", "counting", "--out", "s.png"], "--tsk", "--task"),
        (["demo", "--quik"], "--quik", "--quick"),
        (["merge", "--bse", "b", "--adapter", "a", "--out", "o"], "--bse", "--base"),
        (["finevidbench", "build", "--out", "b.json", "--synthtic", "4"], "--synthtic", "--synthetic"),
        (
            ["finevidbench", "export", "--bench", "b.json", "--fromat", "lmms-eval", "--out", "o"],
            "--fromat",
            "--format",
        ),
        (["eval", "--model", "m", "--benchh", "b.json", "--out", "r.json"], "--benchh", "--bench"),
        (["throughput", "--videos", "v", "--secs", "1"], "--secs", "--seconds"),
    ],
)
def test_a_misspelt_option_is_named_with_the_one_meant(argv, typed, meant, capsys):
    """A new user's typo in an option is the error, with the option most likely meant, in every command that parses
    its own options (sf2t train's fields say the same: TrainConfig has no field ...; did you mean ...); argparse
    alone said that the option it stood for was required, or showed `sf2t`'s usage for `sf2t index`'s option."""
    from sf2t import cli

    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    prog = "sf2t " + " ".join(argv[:2] if argv[0] in ("tasks", "finevidbench") else argv[:1])
    assert f"{prog}: error: unrecognized option {typed!r}; did you mean {meant!r}?" in err, err
    assert "required" not in err and "Traceback" not in err, err


def test_option_check_leaves_values_abbreviations_and_positionals_alone():
    """What argparse takes stays taken: a negative number as a value, --opt=value, -oFILE, an unambiguous
    abbreviation, a value with spaces, anything after --."""
    from sf2t._args import Parser

    p = Parser(prog="t")
    p.add_argument("-o", "--out")
    p.add_argument("--workers", type=int)
    p.add_argument("paths", nargs="*")
    a = p.parse_args(["--workers", "-1", "--out=x", "a", "--", "--not-an-option"])
    assert (a.workers, a.out, a.paths) == (-1, "x", ["a", "--not-an-option"])
    assert p.parse_args(["-oF", "--work", "2", "-a b"]).out == "F"


@pytest.mark.parametrize(
    "argv, words",
    [
        (
            ["tasks", "export", "--manifest", "m.jsonl", "--out", "ds", "--num", "0"],
            "argument --num: must be a positive",
        ),
        (
            ["tasks", "export", "--manifest", "m.jsonl", "--out", "ds", "--num", "2", "--frame-repeat", "0"],
            "argument --frame-repeat: must be a positive",
        ),
        (
            ["tasks", "export", "--manifest", "m.jsonl", "--out", "ds", "--num", "2", "--samples-per-window", "0"],
            "argument --samples-per-window: must be a positive",
        ),
        (
            ["tasks", "preview", "--manifest", "m.jsonl", "--task", "speed", "--out", "s.png", "--num", "0"],
            "--num: must",
        ),
    ],
)
def test_tasks_counts_below_one_name_the_option(argv, words, capsys):
    """sf2t tasks export / preview name the option a count below 1 came from, before the manifest is read (they said
    `num must be a positive integer`, `frame_repeat must be ...`: the Python parameter, not the option typed)."""
    from sf2t import cli

    with pytest.raises(SystemExit) as e:
        cli.main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert words in err and "m.jsonl" not in err.splitlines()[-1], err


def test_merge_says_what_the_adapter_path_is_instead(tmp_path, capsys):
    """sf2t merge (and eval: the same words) --adapter that does not exist, or is the adapter's adapter_config.json:
    said as such (it read "... is not a LoRA adapter directory (no adapter_config.json)" for the file itself)."""
    from sf2t import cli

    adapter = tmp_path / "run" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    for given, words in (
        (tmp_path / "nosuch", "; no such file or folder"),
        (adapter / "adapter_config.json", f"; it is a file: pass its folder {str(adapter)!r}"),
        (tmp_path / "run", f"; it is a sf2t train run folder: its adapter is {str(adapter)!r}"),
    ):
        argv = ["merge", "--base", str(tmp_path), "--adapter", str(given), "--out", str(tmp_path / "m")]
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert err.strip().endswith(words) and "Traceback" not in err, err


def test_finevidbench_names_an_unknown_subcommand(capsys):
    """`sf2t finevidbench bild` says which word is wrong and the one meant (it printed the usage only); --help is
    the usage on stdout, exit 0."""
    from sf2t import cli

    assert cli.main(["finevidbench", "bild", "--out", "b.json"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1] == "sf2t finevidbench: error: unknown subcommand 'bild'; did you mean 'build'?"
    assert cli.main(["finevidbench", "--help"]) == 0
    assert "sf2t finevidbench export --bench" in capsys.readouterr().out


def test_no_progress_turns_off_transformers_bars_too(tmp_path, monkeypatch):
    """sf2t demo --no-progress: transformers' own bars ("Loading weights", "Writing model shards") are off while
    the demo runs (they were drawn still), and on again after; without the flag they are left on."""
    from transformers.utils import logging as hf_logging

    import sf2t.demo as demo

    seen = []
    monkeypatch.setattr(demo, "run_demo", lambda *a, **k: seen.append(hf_logging.is_progress_bar_enabled()))
    assert hf_logging.is_progress_bar_enabled()
    assert demo.main(["--out", str(tmp_path / "d1"), "--quick", "--no-progress"]) == 0
    assert demo.main(["--out", str(tmp_path / "d2"), "--quick"]) == 0
    assert seen == [False, True] and hf_logging.is_progress_bar_enabled()


def test_version(capsys):
    """`sf2t --version` prints the version (it was "unrecognized arguments: --version")."""
    import sf2t
    from sf2t import cli

    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"sf2t {sf2t.__version__}"


@pytest.mark.parametrize(
    "spelt",
    [["-o", "{}"], ["-o{}"], ["--out", "{}"], ["--out={}"], ["--ou", "{}"], ["-o", "first.jsonl", "--out", "{}"]],
)
def test_what_a_stopped_index_kept_names_the_manifest_however_out_was_spelt(spelt, tmp_path):
    """After a file error, `sf2t index` names the manifest as its parser took it (-oFILE, an abbreviation, the last of
    several; -oFILE said "the manifest"), and says whether there is one to go on from: a first run stopped before its
    first save has none (it said the manifest "holds what was last saved")."""
    from sf2t import cli

    out = tmp_path / "m.jsonl"
    argv = ["index", "v", *(a.format(out) for a in spelt), "--quiet"]
    said = cli._kept_after_os_error(argv)
    assert said == f"; nothing was saved yet ({out} was not written): once that is fixed, the same command starts again"
    out.write_text("")
    said = cli._kept_after_os_error(argv)
    assert said == (
        f"; {out} holds what was last saved (it is written whole or not at all): once that is fixed, the same command "
        "goes on from there"
    ), said


@pytest.mark.parametrize(
    "argv, said",
    [
        (["demo", "--ou=D", "--quick"], "; what was made so far stays in D:"),
        (["throughput", "--videos", "a.mp4", "--js", "T.json"], "; nothing was written to --json T.json"),
        (["tasks", "export", "--manifest", "m", "--ou", "X", "--num", "2"], "; the sample frames written to X that"),
        (["finevidbench", "build", "--synthetic", "1", "--ou=B.json"], "; the benchmark B.json was not written"),
    ],
)
def test_what_a_stopped_command_kept_names_its_files_as_its_parser_took_them(argv, said):
    """The other commands' files too, as their own parsers took the options (an abbreviation, --opt=value)."""
    from sf2t import cli

    assert cli._kept_after_os_error(argv).startswith(said), cli._kept_after_os_error(argv)


def test_counts_say_one_in_the_singular():
    """The counts the commands print: "trained 1 step", not "trained 1 steps" (sf2t._plural.counted)."""
    from sf2t._plural import counted, noun_for

    assert [counted(n, "step") for n in (0, 1, 2)] == ["0 steps", "1 step", "2 steps"]
    assert counted(1, "entry") == "1 entry" and counted(3, "entry") == "3 entries" and counted(2, "day") == "2 days"
    assert counted(1, "video-task pair") == "1 video-task pair" and counted(1024, "file", fmt=",") == "1,024 files"
    assert [noun_for(n, "task") for n in (0, 1, 2)] == ["tasks", "task", "tasks"]  # a count said by a list after it
    assert counted(2, "process") == "2 processes" and counted(1, "timed round") == "1 timed round"


def test_none_of_one_is_said_naturally():
    """ "none of the 1 training video can be read" read oddly: one is "the only ...", with the negated verb
    (sf2t._plural.none_of, used by every "none of the N ..." message)."""
    from sf2t._plural import none_of

    assert none_of(2, "video", "can be read", "cannot be read") == "none of the 2 videos can be read"
    assert none_of(1, "video", "can be read", "cannot be read") == "the only video cannot be read"
    assert none_of(3, "record", "fits", "does not fit", owner="its") == "none of its 3 records fits"
    assert none_of(1, "record", "fits", "does not fit", owner="its") == "its only record does not fit"
    assert none_of(2, "entry in x", "is", "is not", nouns="entries in x") == "none of the 2 entries in x is"


def test_what_a_stopped_index_kept_is_said_for_a_manifest_name_too_long(tmp_path, capsys):
    """`sf2t index -o NAME` with a name too long for the file system stops on the OSError in one line: asking whether
    the manifest is there (Path.is_file) raised the same OSError again inside the handler, a chained traceback."""
    from sf2t import cli
    from sf2t.video import index

    (tmp_path / "a.mp4").write_bytes(b"")
    out = tmp_path / ("m" * 300)
    assert cli.main(["index", str(tmp_path / "a.mp4"), "-o", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err.startswith("sf2t index: ") and "File name too long" in err, err
    assert err.endswith(
        f"nothing was saved yet ({out} was not written): once that is fixed, the same command starts again\n"
    )
    assert index.kept_text(out) == f"nothing was saved yet ({out} was not written)"
