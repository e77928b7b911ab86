"""Build sf2t and its compiled extension sf2t._C.

C++ sources are always built. CUDA sources are built when the installed torch has CUDA and a CUDA
toolkit is found, or when SF2T_FORCE_CUDA=1; SF2T_NO_CUDA=1 turns them off. MAX_JOBS and
TORCH_CUDA_ARCH_LIST are honoured (arch list defaults to 9.0 when no GPU is visible). Nothing is
downloaded: build with `pip install -e . --no-build-isolation` against the torch you run.
What was built is recorded in sf2t/_build_info.json and shown by `sf2t info`.
"""

import datetime
import glob
import importlib.util
import json
import os
import subprocess
import sys

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join(ROOT, "csrc")


def _env_flag(name):
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _cuda_home():
    """CUDA_HOME if set; else /usr/local/cuda when it has nvcc (torch's auto-detection can pick the
    nvidia pip packages' folder, which has no usable nvcc); else whatever torch finds."""
    if os.environ.get("CUDA_HOME"):
        return os.environ["CUDA_HOME"]
    if os.path.exists("/usr/local/cuda/bin/nvcc"):
        os.environ["CUDA_HOME"] = "/usr/local/cuda"
        return "/usr/local/cuda"
    return None


def _git_sha():
    try:
        sha = (
            subprocess.check_output(["git", "rev-parse", "HEAD"], cwd=ROOT, stderr=subprocess.DEVNULL).decode().strip()
        )
        dirty = subprocess.call(["git", "diff", "--quiet", "HEAD", "--", "csrc"], cwd=ROOT, stderr=subprocess.DEVNULL)
        return sha + ("+dirty" if dirty else "")
    except Exception:
        return "unknown"


def sources_digest(root=CSRC):
    """SHA-256 over every C++/CUDA source (sf2t/_ext.py's, loaded by path: the package is not built yet)."""
    spec = importlib.util.spec_from_file_location("_sf2t_ext_for_setup", os.path.join(ROOT, "sf2t", "_ext.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.sources_digest(root)


def _nvcc_version(cuda_home):
    try:
        out = subprocess.check_output([os.path.join(cuda_home, "bin", "nvcc"), "--version"]).decode()
        return out.strip().splitlines()[-1]
    except Exception:
        return None


def _version():
    ns = {}
    with open(os.path.join(ROOT, "sf2t", "_version.py")) as f:
        exec(f.read(), ns)
    return ns["__version__"]


def _extensions():
    _cuda_home()  # sets CUDA_HOME before torch.utils.cpp_extension reads it
    import torch
    from torch.utils import cpp_extension

    no_cuda, force_cuda = _env_flag("SF2T_NO_CUDA"), _env_flag("SF2T_FORCE_CUDA")
    torch_cuda = torch.version.cuda
    toolkit = cpp_extension.CUDA_HOME
    if no_cuda:
        with_cuda, why = False, "SF2T_NO_CUDA=1"
    elif force_cuda:
        with_cuda, why = True, "SF2T_FORCE_CUDA=1"
    elif torch_cuda is None:
        with_cuda, why = False, "the installed torch has no CUDA"
    elif toolkit is None:
        with_cuda, why = False, "no CUDA toolkit found (set CUDA_HOME)"
    else:
        with_cuda, why = True, "torch has CUDA and a toolkit was found"
    if with_cuda and not os.environ.get("TORCH_CUDA_ARCH_LIST"):
        if torch.cuda.is_available():
            cap = torch.cuda.get_device_capability()
            os.environ["TORCH_CUDA_ARCH_LIST"] = f"{cap[0]}.{cap[1]}"
        else:
            os.environ["TORCH_CUDA_ARCH_LIST"] = "9.0"
    arch = os.environ.get("TORCH_CUDA_ARCH_LIST") if with_cuda else None
    cpp_sources = sorted(
        glob.glob(os.path.join("csrc", "*.cpp")) + glob.glob(os.path.join("csrc", "ops", "**", "*.cpp"), recursive=True)
    )
    cu_sources = sorted(glob.glob(os.path.join("csrc", "ops", "**", "*.cu"), recursive=True))
    sources = cpp_sources + (cu_sources if with_cuda else [])
    # -fopenmp: at::parallel_for is a header template over OpenMP (torch's build); without the flag the kernels'
    # parallel loops compile to one thread. The runtime is torch's own libgomp.so.1 (same soname, loaded once).
    extra = {"cxx": ["-O3", "-fopenmp", "-fdiagnostics-color=always"]}
    if with_cuda:
        extra["nvcc"] = ["-O3", "--expt-relaxed-constexpr", "-lineinfo"]
    if _env_flag("SF2T_SANITIZE"):  # address/undefined sanitizer build of the CPU kernels (issue 5)
        extra["cxx"] = ["-O1", "-g", "-fopenmp", "-fsanitize=address,undefined", "-fno-omit-frame-pointer"]
    ext_cls = cpp_extension.CUDAExtension if with_cuda else cpp_extension.CppExtension
    ext = ext_cls(
        name="sf2t._C",
        sources=sources,
        include_dirs=[CSRC],
        extra_compile_args=extra,
        extra_link_args=["-fopenmp"] + (["-fsanitize=address,undefined"] if _env_flag("SF2T_SANITIZE") else []),
        py_limited_api=False,
    )
    info = {
        "sf2t_version": _version(),
        "git_sha": _git_sha(),
        "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch_cuda": torch_cuda,
        "with_cuda": with_cuda,
        "cuda_reason": why,
        "cuda_home": toolkit if with_cuda else None,
        "nvcc": _nvcc_version(toolkit) if (with_cuda and toolkit) else None,
        "cuda_arch_list": arch,
        "max_jobs": os.environ.get("MAX_JOBS"),
        "sources": sources,
        "sources_sha256": sources_digest(),
    }
    print("sf2t build configuration:")
    for k, v in info.items():
        if k != "sources":
            print(f"  {k:16s} {v}")
    print(f"  {'sources':16s} {len(sources)} files ({len(cu_sources) if with_cuda else 0} CUDA)")
    with open(os.path.join(ROOT, "sf2t", "_build_info.json"), "w") as f:
        json.dump(info, f, indent=2)
    return [ext], cpp_extension.BuildExtension.with_options(use_ninja=True)


ext_modules, build_ext = _extensions()

setup(
    name="sf2t",
    version=_version(),
    description="Self-supervised fragment fine-tuning (SF²T) of video LLMs: fast decoding, fused kernels",
    long_description=open(os.path.join(ROOT, "README.md")).read()
    if os.path.exists(os.path.join(ROOT, "README.md"))
    else "",
    long_description_content_type="text/markdown",
    python_requires=">=3.11",  # the answer parsers use possessive quantifiers (re, Python 3.11+)
    packages=find_packages(include=["sf2t", "sf2t.*"]) + ["sf2t.kernels"],
    package_dir={"sf2t.kernels": "kernels"},
    package_data={"sf2t": ["_build_info.json", "finevidbench/schema.json"]},
    ext_modules=ext_modules,
    cmdclass={"build_ext": build_ext},
    # matplotlib: tasks preview's contact sheet and the report charts of train, demo and eval
    install_requires=["torch", "numpy", "tqdm", "pyyaml", "matplotlib"],
    extras_require={
        "video": ["torchcodec", "av"],
        "train": ["transformers>=5.0", "peft", "tokenizers"],
        "dali": ["nvidia-dali-cuda130"],
        "test": ["pytest", "pytest-benchmark"],
    },
    entry_points={"console_scripts": ["sf2t=sf2t.cli:main"]},
)
