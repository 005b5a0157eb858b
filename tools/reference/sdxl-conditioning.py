#!/usr/bin/env python3
"""
Reference numbers for SDXL's conditioning, from diffusers' own StableDiffusionXLPipeline.

What runs: diffusers' real StableDiffusionXLPipeline (its __init__, __call__ up to the first UNet
call, encode_prompt, _get_add_time_ids, the classifier-free-guidance batching) and its real
EulerDiscreteScheduler. What is fake: the components. Two tokenizers map a few words to fixed,
arbitrary ids (only CLIP's start 49406 and end 49407 are real; tokenizer pads with <|endoftext|>,
tokenizer_2 with "!" = 0, as SDXL's); two text encoders return fixed hidden states (a formula of
the ids, recorded in full) shaped as CLIPTextModel's and CLIPTextModelWithProjection's outputs; a
UNet records what the pipeline feeds it, then stops the run. Sizes are tiny (sequence 8, hidden 3
and 5, projection 4) so the JSON stays small; the logic under test does not depend on them.

Only this script and its JSON are committed. diffusers is imported from a checkout of its source:

    git clone https://github.com/huggingface/diffusers /some/where/diffusers
    DIFFUSERS_SRC=/some/where/diffusers/src python3 tools/reference/sdxl-conditioning.py \\
        [tests/engine/fixtures/sdxl-conditioning.json]

DIFFUSERS_SRC is the directory holding diffusers/__init__.py. The JSON records diffusers' version
and commit (`git rev-parse HEAD` in DIFFUSERS_SRC, or DIFFUSERS_COMMIT when the source is not a
git work tree, e.g. an exported snapshot).

Needs torch (Debian: apt-get install python3-torch, 1.13 works) and numpy, plus the small
dependencies diffusers imports at start-up: filelock, regex, packaging, requests, httpx,
importlib_metadata (Debian: python3-<name>). transformers, huggingface_hub, safetensors and
tokenizers are not needed: the pipeline never calls into them here, so this script puts empty
stand-ins on the import path, and adds placeholders for the few torch 2.x names that diffusers
references at import time (torch.xpu, torch.compiler, float8 dtypes, ...), none of which the
conditioning code uses. Regenerated with diffusers 0.40.0.dev0 (commit 58eb52c0803e) on torch 1.13.1.
"""

import importlib.abc
import importlib.machinery
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import types

# ---------------------------------------------------------------------------------------------
# Import-time stand-ins (no code of the real packages: empty modules that hand out dummy names)
# ---------------------------------------------------------------------------------------------

STUB_PACKAGES = {"huggingface_hub": "1.23.0", "transformers": "4.57.0", "safetensors": "0.8.0", "tokenizers": "0.22.0"}
# torch 1.13 lacks these modules; diffusers imports them for parallelism and flex attention only
STUB_TORCH_MODULES = {"torch.distributed._functional_collectives", "torch.nn.attention", "torch.nn.attention.flex_attention"}
# values that diffusers reads at import time and uses as strings or flags
STUB_VALUES = {
    "huggingface_hub.constants": {
        "HF_HOME": tempfile.gettempdir(),
        "HF_HUB_CACHE": tempfile.gettempdir(),
        "HF_HUB_OFFLINE": True,
        "HF_HUB_DISABLE_TELEMETRY": True,
    },
}


class _Dummy:
    """Accepts any construction and call: stands for classes the pipeline imports but never uses."""

    def __init__(self, *args, **kwargs):
        pass

    def __call__(self, *args, **kwargs):
        return _Dummy()

    def __class_getitem__(cls, item):
        return cls


def _dummy_attribute(module_name, name):
    if name.startswith("__"):
        raise AttributeError(name)
    if name.isupper():
        return None
    if name[:1].isupper():
        return type(name, (_Dummy,), {"__module__": module_name})

    def function(*args, **kwargs):
        return None

    function.__name__ = name
    return function


class _StubLoader(importlib.abc.Loader):
    def create_module(self, spec):
        return None

    def exec_module(self, module):
        name = module.__name__
        module.__path__ = []
        module.__version__ = STUB_PACKAGES.get(name, "0")
        for key, value in STUB_VALUES.get(name, {}).items():
            setattr(module, key, value)
        module.__getattr__ = lambda attr, _name=name: _dummy_attribute(_name, attr)


class _StubFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] in STUB_PACKAGES or fullname in STUB_TORCH_MODULES:
            return importlib.machinery.ModuleSpec(fullname, _StubLoader(), is_package=True)
        return None


def install_stand_ins():
    sys.meta_path.insert(0, _StubFinder())
    # diffusers asks importlib.metadata for versions: give the stand-ins distribution records
    dist_dir = tempfile.mkdtemp(prefix="sdxl-reference-dists-")
    for name, version in STUB_PACKAGES.items():
        info = os.path.join(dist_dir, f"{name}-{version}.dist-info")
        os.makedirs(info)
        with open(os.path.join(info, "METADATA"), "w") as f:
            f.write(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        with open(os.path.join(info, "top_level.txt"), "w") as f:
            f.write(f"{name}\n")
    sys.path.append(dist_dir)

    import torch
    import torch.distributed

    class NoBackend(types.SimpleNamespace):
        def __getattr__(self, name):
            if name.startswith("__"):
                raise AttributeError(name)
            return lambda *args, **kwargs: False

    for backend in ("xpu", "mps", "mtia", "npu"):
        if not hasattr(torch, backend):
            setattr(torch, backend, NoBackend())
    for dtype in ("float8_e4m3fn", "float8_e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz", "uint16", "uint32", "uint64"):
        if not hasattr(torch, dtype):
            setattr(torch, dtype, types.SimpleNamespace(name=f"absent torch.{dtype}"))

    def identity_decorator(fn=None, *args, **kwargs):
        return fn if callable(fn) else (lambda g: g)

    if not hasattr(torch, "compiler"):
        torch.compiler = types.SimpleNamespace(disable=identity_decorator, is_compiling=lambda: False, is_dynamo_compiling=lambda: False)
    if not hasattr(torch.distributed, "device_mesh"):
        torch.distributed.device_mesh = types.SimpleNamespace(DeviceMesh=type("DeviceMesh", (), {}))


# ---------------------------------------------------------------------------------------------
# Fake components
# ---------------------------------------------------------------------------------------------

SEQ = 8  # tokenizer.model_max_length: the pipeline pads every prompt to it
HIDDEN = {1: 3, 2: 5}
LAYERS = {1: 2, 2: 3}  # hidden_states has LAYERS + 1 entries; SDXL reads [-2]
PROJECTION = 4  # text_encoder_2.config.projection_dim: width of text_embeds
ADD_TIME_DIM = 8  # unet.config.addition_time_embed_dim
START, END, BANG = 49406, 49407, 0
WORDS = {"a": 320, "cat": 2368, "on": 525, "bench": 8771, "blurry": 21977}


def exact(x):
    """Rounds to a multiple of 1/256: exact in float32, short in JSON."""
    return round(x * 256) / 256


class FakeTokenizer:
    def __init__(self, pad_id):
        self.pad_id = pad_id
        self.model_max_length = SEQ
        self.added_tokens_encoder = {}

    def tokenize(self, text):
        return text.split()

    def _ids(self, text):
        return [START] + [WORDS[w] for w in text.split()] + [END]

    def __call__(self, texts, padding="max_length", max_length=None, truncation=False, return_tensors="pt"):
        import torch

        rows = [self._ids(t) for t in ([texts] if isinstance(texts, str) else texts)]
        if truncation and max_length is not None:
            rows = [r[: max_length - 1] + [END] if len(r) > max_length else r for r in rows]
        width = max_length if padding == "max_length" else max(len(r) for r in rows)
        rows = [r + [self.pad_id] * (width - len(r)) for r in rows]
        return types.SimpleNamespace(input_ids=torch.tensor(rows, dtype=torch.long))

    def batch_decode(self, ids):
        return [str(row) for row in ids.tolist()]


class FakeEncoderOutput:
    """Indexes like transformers' ModelOutput: [0] is the first field, .hidden_states the tuple."""

    def __init__(self, first, hidden_states):
        self._first = first
        self.hidden_states = hidden_states

    def __getitem__(self, index):
        if index != 0:
            raise IndexError(index)
        return self._first


class FakeTextEncoder:
    """hidden_states[k][b, s, d] is a fixed formula of (ids[b, s], s, k, d); every call is logged."""

    def __init__(self, which, log):
        import torch

        self.which = which
        self.log = log
        self.dtype = torch.float32
        self.device = torch.device("cpu")
        self.config = types.SimpleNamespace(projection_dim=PROJECTION if which == 2 else None, hidden_size=HIDDEN[which])

    def __call__(self, input_ids, output_hidden_states=False):
        import torch

        ids = input_ids.tolist()
        h, layers = HIDDEN[self.which], LAYERS[self.which]
        states = []
        for k in range(layers + 1):
            states.append(
                torch.tensor(
                    [
                        [[exact(math.sin(0.013 * t + 0.7 * s + 1.1 * k + 0.37 * d + self.which)) for d in range(h)] for s, t in enumerate(row)]
                        for row in ids
                    ],
                    dtype=torch.float32,
                )
            )
        last = torch.tensor([[[exact(v * 0.5) for v in tok] for tok in row] for row in states[-1].tolist()], dtype=torch.float32)
        if self.which == 1:
            first = last  # CLIPTextModel: last_hidden_state, 3-D; the pipeline skips it for pooling
        else:
            # CLIPTextModelWithProjection: text_embeds, 2-D; the pipeline takes it as the pooled embedding
            first = torch.tensor([[exact(math.cos(0.0007 * sum(row) + 0.9 * d)) for d in range(PROJECTION)] for row in ids], dtype=torch.float32)
        self.log.append(
            {
                "encoder": self.which,
                "input_ids": ids,
                "output_hidden_states": bool(output_hidden_states),
                "hidden_states": [tensor_json(s) for s in states],
                "last_hidden_state": tensor_json(last),
                **({"text_embeds": tensor_json(first)} if self.which == 2 else {}),
            }
        )
        return FakeEncoderOutput(first, tuple(states))


class FirstUNetCall(Exception):
    pass


class FakeUNet:
    def __init__(self, record):
        import torch

        self.record = record
        self.dtype = torch.float32
        self.device = torch.device("cpu")
        self.config = types.SimpleNamespace(
            in_channels=4, sample_size=128, addition_time_embed_dim=ADD_TIME_DIM, time_cond_proj_dim=None
        )
        # _get_add_time_ids checks its 6 ids × addition_time_embed_dim + projection_dim against this
        self.add_embedding = types.SimpleNamespace(linear_1=types.SimpleNamespace(in_features=6 * ADD_TIME_DIM + PROJECTION))

    def __call__(self, sample, timestep, encoder_hidden_states=None, added_cond_kwargs=None, **kwargs):
        self.record.update(
            sample_dims=list(sample.shape),
            timestep=float(timestep),
            encoder_hidden_states=tensor_json(encoder_hidden_states),
            text_embeds=tensor_json(added_cond_kwargs["text_embeds"]),
            time_ids=tensor_json(added_cond_kwargs["time_ids"]),
        )
        raise FirstUNetCall()


class FakeVae:
    def __init__(self):
        import torch

        self.dtype = torch.float32
        self.device = torch.device("cpu")
        # four levels → vae_scale_factor 8, as SDXL's AutoencoderKL
        self.config = types.SimpleNamespace(block_out_channels=[1, 1, 1, 1], scaling_factor=0.13025, force_upcast=False)


def tensor_json(t):
    return {"dims": list(t.shape), "data": [float(v) for v in t.detach().reshape(-1).tolist()]}


# ---------------------------------------------------------------------------------------------
# Cases
# ---------------------------------------------------------------------------------------------

CASES = [
    {"name": "prompt and negative prompt, guidance", "prompt": "a cat on a bench", "negative_prompt": "blurry", "guidance_scale": 5.0, "force_zeros_for_empty_prompt": True},
    {"name": "no negative prompt, force_zeros true: zeros", "prompt": "a cat on a bench", "negative_prompt": None, "guidance_scale": 5.0, "force_zeros_for_empty_prompt": True},
    {"name": "no negative prompt, force_zeros false: the empty prompt encoded", "prompt": "a cat on a bench", "negative_prompt": None, "guidance_scale": 5.0, "force_zeros_for_empty_prompt": False},
    {"name": "negative prompt \"\", force_zeros true: encoded, not zeros (diffusers tests `is None`)", "prompt": "a cat on a bench", "negative_prompt": "", "guidance_scale": 5.0, "force_zeros_for_empty_prompt": True},
    {"name": "guidance off (scale 0, as SDXL-Lightning): batch 1", "prompt": "a cat on a bench", "negative_prompt": "blurry", "guidance_scale": 0.0, "force_zeros_for_empty_prompt": True},
    {"name": "guidance scale 1: off (diffusers needs > 1)", "prompt": "a cat", "negative_prompt": "blurry", "guidance_scale": 1.0, "force_zeros_for_empty_prompt": True},
    {"name": "time ids, 1024 x 1024", "prompt": "a cat", "negative_prompt": None, "guidance_scale": 5.0, "force_zeros_for_empty_prompt": True, "width": 1024, "height": 1024},
    {"name": "time ids, width 512 height 768: (h, w) order", "prompt": "a cat", "negative_prompt": None, "guidance_scale": 0.0, "force_zeros_for_empty_prompt": True, "width": 512, "height": 768},
    {"name": "time ids, crop (0, 0) given explicitly", "prompt": "a cat", "negative_prompt": None, "guidance_scale": 0.0, "force_zeros_for_empty_prompt": True, "width": 512, "height": 768, "crops_coords_top_left": [0, 0]},
    {"name": "time ids, crop (16, 32) and original size (600, 400): (top, left), (h, w)", "prompt": "a cat", "negative_prompt": None, "guidance_scale": 0.0, "force_zeros_for_empty_prompt": True, "width": 512, "height": 768, "crops_coords_top_left": [16, 32], "original_size": [600, 400]},
]

SCHEDULER_CONFIG = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "timestep_spacing": "trailing",
}
STEPS = 4


def run_case(diffusers, case):
    import torch

    from diffusers.pipelines.stable_diffusion_xl.pipeline_stable_diffusion_xl import StableDiffusionXLPipeline

    encoder_calls = []
    unet_record = {}
    pipe = StableDiffusionXLPipeline(
        vae=FakeVae(),
        text_encoder=FakeTextEncoder(1, encoder_calls),
        text_encoder_2=FakeTextEncoder(2, encoder_calls),
        tokenizer=FakeTokenizer(END),
        tokenizer_2=FakeTokenizer(BANG),
        unet=FakeUNet(unet_record),
        scheduler=diffusers.EulerDiscreteScheduler(**SCHEDULER_CONFIG),
        force_zeros_for_empty_prompt=case["force_zeros_for_empty_prompt"],
        add_watermarker=False,
    )

    pipe.set_progress_bar_config(disable=True)

    # record what the pipeline's own encode_prompt and _get_add_time_ids return, unchanged
    encoded = {}
    real_encode = pipe.encode_prompt
    real_time_ids = pipe._get_add_time_ids

    def encode_prompt(*args, **kwargs):
        out = real_encode(*args, **kwargs)
        names = ("prompt_embeds", "negative_prompt_embeds", "pooled_prompt_embeds", "negative_pooled_prompt_embeds")
        encoded.update({n: (None if t is None else tensor_json(t)) for n, t in zip(names, out)})
        encoded["do_classifier_free_guidance"] = kwargs.get("do_classifier_free_guidance")
        return out

    time_id_calls = []

    def get_add_time_ids(*args, **kwargs):
        out = real_time_ids(*args, **kwargs)
        time_id_calls.append(tensor_json(out))
        return out

    pipe.encode_prompt = encode_prompt
    pipe._get_add_time_ids = get_add_time_ids

    call = {k: case[k] for k in ("prompt", "negative_prompt", "guidance_scale")}
    for key in ("width", "height"):
        if key in case:
            call[key] = case[key]
    if "crops_coords_top_left" in case:
        call["crops_coords_top_left"] = tuple(case["crops_coords_top_left"])
    if "original_size" in case:
        call["original_size"] = tuple(case["original_size"])
    # small default latents keep the run cheap where the case does not test sizes
    call.setdefault("width", 64)
    call.setdefault("height", 64)
    try:
        pipe(**call, num_inference_steps=STEPS, generator=torch.Generator().manual_seed(0), output_type="latent")
    except FirstUNetCall:
        pass
    else:
        raise RuntimeError("the pipeline never called the UNet")

    return {
        "name": case["name"],
        "inputs": {**{k: v for k, v in case.items() if k != "name"}, "width": call["width"], "height": call["height"]},
        "encoder_calls": encoder_calls,
        "encode_prompt": encoded,
        "add_time_ids": time_id_calls[0],
        "unet_inputs": unet_record,
    }


def compact_json(value):
    """Indented JSON with each list of numbers on one line: a tensor's data is one line, not hundreds."""
    text = json.dumps(value, indent=1)
    numbers = r"\[\s*(-?[\d.e+-]+(?:,\s*-?[\d.e+-]+)*)\s*\]"
    return re.sub(numbers, lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]", text) + "\n"


def diffusers_commit(src):
    try:
        return subprocess.run(["git", "-C", src, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def main():
    src = os.environ.get("DIFFUSERS_SRC")
    if not src or not os.path.isdir(os.path.join(src, "diffusers")):
        sys.exit("Set DIFFUSERS_SRC to diffusers' src/ directory (the one holding diffusers/__init__.py).")
    default_out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "engine", "fixtures", "sdxl-conditioning.json")
    out_path = os.path.normpath(sys.argv[1] if len(sys.argv) > 1 else default_out)

    install_stand_ins()
    sys.path.insert(0, src)
    import torch

    import diffusers

    torch.set_num_threads(1)
    result = {
        "about": (
            "SDXL conditioning from diffusers' own StableDiffusionXLPipeline (encode_prompt, _get_add_time_ids, the "
            "classifier-free-guidance batching of __call__) with fake tokenizers, text encoders and UNet; written by "
            "tools/reference/sdxl-conditioning.py, which says how to regenerate it. encoder_calls are the fake "
            "encoders' inputs and outputs in call order; unet_inputs are the tensors of the first UNet call "
            "(negative rows first when guidance is on)."
        ),
        "diffusers_version": diffusers.__version__,
        "diffusers_commit": os.environ.get("DIFFUSERS_COMMIT") or diffusers_commit(src),
        "torch_version": torch.__version__,
        "sizes": {"sequence": SEQ, "hidden": [HIDDEN[1], HIDDEN[2]], "layers": [LAYERS[1], LAYERS[2]], "projection_dim": PROJECTION, "addition_time_embed_dim": ADD_TIME_DIM},
        "tokens": {"start": START, "end": END, "tokenizer_pad": END, "tokenizer_2_pad": BANG, "words": WORDS},
        "scheduler": {"class": "EulerDiscreteScheduler", **SCHEDULER_CONFIG, "num_inference_steps": STEPS},
        "cases": [run_case(diffusers, case) for case in CASES],
    }
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w") as f:
        f.write(compact_json(result))
    print(f"wrote {out_path}: {len(result['cases'])} cases")


if __name__ == "__main__":
    main()
