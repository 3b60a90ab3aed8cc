"""`vmimage preview-summary` on input that is not what the engine writes: one line and exit 2 at
worst, never a crash; a secret envelope shows as [secret] wherever it is."""

from __future__ import annotations

import json
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from vmimage.errors import ImageError
from vmimage.review.summary import MAX_DEPTH, parse_preview, stack_of, summary_markdown

SIGNATURE = "4dabf18193072939515e22adb298388d"
IMAGE = "pulumi-python:dynamic/vmimage:ClusterVirtualMachineImage"

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=30,
)
keys = st.sampled_from(
    ["steps", "op", "newState", "oldState", "type", "inputs", "outputs", "display_name", "capabilities",
     "status", "osInfo", "vmi_id", "item_id", "changeSummary", "policies"]
)  # fmt: skip
shaped = st.recursive(
    st.none() | st.integers() | st.text(max_size=6) | st.sampled_from(["create", "replace", IMAGE]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=5),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(st.one_of(json_values, shaped))
def test_any_json_summarises_or_is_one_clear_error(document):
    text = json.dumps(document)
    try:
        parsed = parse_preview(text, "preview.json")
    except ImageError as error:
        assert str(error).startswith("preview.json: ") and "\n" not in str(error)
        return
    markdown = summary_markdown(parsed, stack_of(parsed), parsed if isinstance(parsed, dict) else None)
    assert markdown.startswith("### vmimage catalog")


def _step(new: dict) -> dict:
    return {"op": "create", "urn": "urn:pulumi:prod::vmimage::x::img", "newState": {"type": IMAGE, "inputs": new}}


def test_a_secret_envelope_is_secret_wherever_it_is():
    secret = {SIGNATURE: "1b47061264138c4ac30d75fd1eb44270", "ciphertext": "v1:abc:SECRETVALUE"}
    step = _step({"display_name": secret, "capabilities": ["gpu", secret], "namespace": [secret]})
    events = "\n".join(json.dumps(e) for e in ({"resourcePreEvent": {"metadata": {**step, "old": None,
                                                "new": step["newState"]}}}, {"summaryEvent": {}}))  # fmt: skip
    markdown = summary_markdown(parse_preview(events, "events.json"), "prod")
    assert "SECRETVALUE" not in markdown and "ciphertext" not in markdown
    assert "[secret]" in markdown


def test_nesting_past_the_bound_is_refused_in_one_line():
    deep = "[" * (MAX_DEPTH + 5) + "]" * (MAX_DEPTH + 5)
    document = '{"steps": ' + deep + "}"
    result = subprocess.run(
        [sys.executable, "-m", "vmimage", "preview-summary", "-"], input=document, capture_output=True, text=True
    )
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "nested deeper" in result.stderr
    very = '{"steps": ' + "[" * 100_000 + "]" * 100_000 + "}"  # past Python's own recursion limit
    result = subprocess.run(
        [sys.executable, "-m", "vmimage", "preview-summary", "-"], input=very, capture_output=True, text=True
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_wrong_types_where_the_engine_writes_objects_exit_cleanly(tmp_path):
    wrong = {"steps": ["x", {"op": "create", "newState": {"type": IMAGE, "inputs": "notadict"}}], "changeSummary": []}
    path = tmp_path / "preview.json"
    path.write_text(json.dumps(wrong))
    result = subprocess.run(
        [sys.executable, "-m", "vmimage", "preview-summary", str(path)], capture_output=True, text=True
    )
    assert result.returncode == 0 and result.stdout.startswith("### vmimage catalog")
