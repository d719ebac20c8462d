"""The motion studio (issue 16): the API in-process (generate, export, every bad request), the real HTTP server
(limits, busy queue, Host check, no CORS), the page's files served offline, and the page in headless Chromium
when it is installed."""

from __future__ import annotations

import http.client
import io
import json
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest

from motionlcm.studio.api import MAX_BODY
from motionlcm.studio.server import CSP, Studio, make_server


@pytest.fixture(scope="module")
def pipe():
    from motionlcm.pipeline import MotionLCM

    return MotionLCM.from_pretrained()


@pytest.fixture(scope="module")
def studio(pipe):
    return Studio(pipe)


def post(studio, path, data, content_type="application/json"):
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    response = studio.handle("POST", path, body, content_type)
    return response.status, (json.loads(response.body) if response.content_type == "application/json" else response)


def test_generate_gives_the_pipelines_motion_for_a_seed(studio, pipe):
    status, data = post(studio, "/api/generate", {"prompt": "  a person   walks forward ", "seconds": 4, "seed": 7})
    assert status == 200
    joints = np.array(data["joints"])
    assert joints.shape == (80, 22, 3) and data["fps"] == 20 and data["frames"] == 80 and data["seed"] == 7
    assert data["prompt"] == "a person walks forward" and data["steps"] == 1
    assert data["guidance"] == pipe.default_guidance(1) and data["ms"]["generate"] > 0
    reference = pipe("a person walks forward", seconds=4, seed=7)[0].joints
    assert np.abs(joints - reference).max() <= 5e-5  # rounded to 0.1 mm for the wire
    ankles = joints[:, [7, 8], 1]
    assert (ankles.max(0) - ankles.min(0)).min() > 0.05  # it walks: both ankles leave the floor
    again = post(studio, "/api/generate", {"prompt": "a person walks forward", "seconds": 4, "seed": 7})[1]
    assert again["joints"] == data["joints"]
    fresh = post(studio, "/api/generate", {"prompt": "a person waves", "steps": 2, "guidance": 4.5, "seed": None})[1]
    assert fresh["steps"] == 2 and fresh["guidance"] == 4.5 and isinstance(fresh["seed"], int)
    assert "prompt_read_as" not in data  # the model read it as typed
    read = post(studio, "/api/generate", {"prompt": "She waves with her left hand", "seconds": 2, "seed": 7})[1]
    assert read["prompt_read_as"] == "The person waves with the left hand"  # the shipped folder's rewrites


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({"seconds": 4}, 422, "prompt"),
        ({"prompt": ""}, 422, "prompt"),
        ({"prompt": "   "}, 422, "prompt"),
        ({"prompt": 3}, 422, "prompt"),
        ({"prompt": "x" * 501}, 422, "prompt"),
        ({"prompt": "walk", "seconds": 0.1}, 422, "seconds"),
        ({"prompt": "walk", "seconds": 30}, 422, "seconds"),
        ({"prompt": "walk", "seconds": "4"}, 422, "seconds"),
        ({"prompt": "walk", "seconds": True}, 422, "seconds"),
        ({"prompt": "walk", "steps": 3}, 422, "steps"),
        ({"prompt": "walk", "steps": 1.5}, 422, "steps"),
        ({"prompt": "walk", "guidance": -1}, 422, "guidance"),
        ({"prompt": "walk", "guidance": "high"}, 422, "guidance"),
        ({"prompt": "walk", "seed": -1}, 422, "seed"),
        ({"prompt": "walk", "seed": 2**63}, 422, "seed"),
        ({"prompt": "walk", "colour": "red"}, 400, "colour"),
        ([1, 2], 400, None),
    ],
)
def test_every_bad_generate_request_gets_4xx_naming_the_field(studio, body, status, field):
    got, data = post(studio, "/api/generate", body)
    assert (got, data["field"]) == (status, field), data
    assert data["error"].startswith(field or "body")


def test_malformed_requests(studio):
    assert post(studio, "/api/generate", b"{not json")[0] == 400
    assert post(studio, "/api/generate", b'{"prompt": "walk", "guidance": NaN}')[0] == 422
    assert post(studio, "/api/generate", b"\xff\xfe")[0] == 400
    assert post(studio, "/api/generate", {"prompt": "walk"}, "text/plain")[0] == 415
    assert studio.handle("GET", "/api/generate").status == 405
    assert studio.handle("POST", "/api/health", b"{}").status == 405
    assert studio.handle("GET", "/api/nothing").status == 404
    for path in ("/static/../server.py", "/static/../../pipeline.py", "/etc/passwd", "/static/vendor"):
        assert studio.handle("GET", path).status == 404
    assert studio.served["errors"] == 0


def test_export_writes_bvh_npy_and_json(studio):
    joints = post(studio, "/api/generate", {"prompt": "a person waves the right hand", "seconds": 3, "seed": 1})[1]
    joints = np.array(joints["joints"], dtype=np.float32)
    status, response = post(studio, "/api/export", {"joints": joints.tolist(), "fps": 20, "format": "npy"})
    assert status == 200 and np.array_equal(np.load(io.BytesIO(response.body)), joints)
    assert response.headers["Content-Disposition"] == 'attachment; filename="motion.npy"'
    status, response = post(studio, "/api/export", {"joints": joints.tolist(), "format": "bvh"})
    from motionlcm.export.bvh_export import bvh_to_joints, output_frames
    from motionlcm.io.bvh import parse_bvh

    positions = bvh_to_joints(parse_bvh(response.body.decode()))
    assert positions.shape == joints.shape and np.abs(positions - joints).max() < 0.01  # within 1 cm
    status, response = post(studio, "/api/export", {"joints": joints.tolist(), "format": "bvh", "target_fps": 30})
    assert parse_bvh(response.body.decode()).motion.shape[0] == output_frames(60, 20.0, 30.0) == 89  # same span
    status, response = post(studio, "/api/export", {"joints": joints.tolist(), "format": "json", "prompt": "wave",
                                                    "settings": {"seed": 1}})  # fmt: skip
    assert response == {"prompt": "wave", "fps": 20.0, "frames": 60, "seed": 1}
    for body, field in (({"joints": [[1, 2, 3]]}, "joints"), ({"joints": joints.tolist(), "format": "fbx"}, "format"),
                        ({"joints": joints[:, :5].tolist()}, "joints"), ({"joints": joints.tolist(), "fps": 0}, "fps"),
                        ({"joints": (joints * np.nan).tolist()}, "joints"),
                        ({"joints": np.tile(joints, (4, 1, 1)).tolist(), "target_fps": 1e3, "fps": 1}, "target_fps")):  # fmt: skip
        status, data = post(studio, "/api/export", body)
        assert status in (400, 422) and data["field"] == field, data


@pytest.fixture()
def server(studio):
    srv = make_server(studio, "127.0.0.1", 0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def request(server, method, path, body=None, headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=60)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


def test_the_server_guards_its_limits(server):
    response, data = request(server, "GET", "/")
    assert response.status == 200 and b"/static/app.js" in data
    assert (
        response.getheader("Content-Security-Policy") == CSP
        and response.getheader("Access-Control-Allow-Origin") is None
    )
    # a body over the limit is refused from its Content-Length, before a byte of it is read (the client here
    # sends none: a client still sending would see the connection closed under it)
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    conn.putrequest("POST", "/api/generate")
    conn.putheader("Content-Type", "application/json")
    conn.putheader("Content-Length", str(MAX_BODY + 1))
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413 and json.loads(response.read())["error"].startswith("body:")
    conn.close()
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=30)
    conn.putrequest("POST", "/api/generate")
    conn.putheader("Content-Type", "application/json")
    conn.endheaders()
    assert conn.getresponse().status == 411
    conn.close()
    response, data = request(server, "GET", "/api/health", headers={"Host": "attacker.example:80"})
    assert response.status == 421
    response, _ = request(server, "OPTIONS", "/api/generate", headers={"Origin": "https://attacker.example"})
    assert response.status == 405 and response.getheader("Access-Control-Allow-Origin") is None
    body = json.dumps({"prompt": "a person jumps", "seconds": 2, "seed": 3}).encode()
    response, data = request(server, "POST", "/api/generate", body, {"Content-Type": "application/json"})
    assert response.status == 200 and len(json.loads(data)["joints"]) == 40


def test_a_full_queue_answers_503_at_once(pipe):
    """One generation runs, `queue` wait; the next request is refused quickly instead of piling up."""
    gate, entered = threading.Event(), threading.Event()

    class Slow:
        kind, folder, onnx = pipe.kind, pipe.folder, None
        resolve_sampling, scheduler = pipe.resolve_sampling, pipe.scheduler

        def __call__(self, *args, **kwargs):
            entered.set()
            gate.wait(30)
            return pipe(*args, **kwargs)

    studio = Studio(Slow(), queue=0)
    body = {"prompt": "a person walks", "seconds": 1, "seed": 0}
    first: list = []
    worker = threading.Thread(target=lambda: first.append(post(studio, "/api/generate", body)))
    worker.start()
    assert entered.wait(30)
    status, data = post(studio, "/api/generate", body)
    assert status == 503 and "busy" in data["error"]
    gate.set()
    worker.join(60)
    assert first[0][0] == 200 and studio.served == {"generate": 1, "busy": 1, "errors": 0}
    assert post(studio, "/api/generate", body)[0] == 200  # the slot is free again


def test_the_page_loads_nothing_from_outside(studio):
    """Every script, style and module import of the page is a file this server serves: no CDN, no fonts."""
    import re

    html = studio.files["/"][0].decode()
    refs = [ref for ref in re.findall(r'(?:src|href)="([^"]+)"', html) if ref != "data:,"]  # "data:,": no favicon
    assert refs and all(ref in studio.files for ref in refs), refs
    for path, (data, kind) in studio.files.items():
        if kind.startswith("text/javascript"):
            for target in re.findall(r'^\s*(?:import|export)\b[^;]*?from\s*["\']([^"\']+)["\']', data.decode(), re.M):
                resolved = str((Path(path).parent / target).resolve()) if target.startswith(".") else target
                assert resolved in studio.files, (path, target)
    vendored = Path(__file__).resolve().parents[2] / "motionlcm" / "studio" / "static" / "vendor"
    assert (vendored / "LICENSE-three.txt").read_text().startswith("The MIT License")
    assert "default-src 'none'" in CSP and "connect-src 'self'" in CSP


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def dump_dom(url: str, profile: Path) -> subprocess.CompletedProcess:
    """Load `url` in headless Chromium (every other host unresolvable, software WebGL), let the page's timers
    and requests run for 20 s of virtual time, and print the resulting DOM."""
    return subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={profile}",
         "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--virtual-time-budget=20000",
         "--dump-dom", url],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_page_generates_in_headless_chromium(server, tmp_path):
    """The page loads, runs three.js, sends its generate request and shows the motion, with every other host
    unresolvable; every request it made was one this server knows."""
    seen: list[str] = []
    original = server.RequestHandlerClass.log_message
    server.RequestHandlerClass.log_message = lambda self, fmt, *args: seen.append(self.path)
    url = f"http://127.0.0.1:{server.server_address[1]}/?prompt=a%20person%20walks%20forward"
    run = dump_dom(url, tmp_path)
    server.RequestHandlerClass.log_message = original
    assert 'data-state="ready"' in run.stdout, run.stdout[-2000:] + run.stderr[-2000:]
    assert 'data-frames="80"' in run.stdout
    assert "/api/generate" in seen and "/static/vendor/three.core.js" in seen
    assert all(p.split("?")[0] in ("/", "/api/health", "/api/generate", "/favicon.ico") or p.startswith("/static/")
               for p in seen), seen  # fmt: skip


def test_the_command_serves_and_warns_when_exposed():
    """`motionlcm studio --port 0` prints its URL and serves; binding every interface warns; a bad port is exit 2."""
    import re
    import sys

    for host, warned in (("127.0.0.1", False), ("0.0.0.0", True)):
        proc = subprocess.Popen([sys.executable, "-m", "motionlcm.cli", "studio", "--port", "0", "--host", host],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
        try:
            line = proc.stdout.readline()
            port = int(re.search(r":(\d+)/", line).group(1))
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request("GET", "/api/health")
            health = json.loads(conn.getresponse().read())
            assert health["status"] == "ok" and health["backend"] == "torch"
        finally:
            proc.terminate()
            _, err = proc.communicate(timeout=30)
        assert ("reachable from other machines" in err) == warned, err
    bad = subprocess.run([sys.executable, "-m", "motionlcm.cli", "studio", "--port", "70000"], capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert bad.returncode == 2 and "--port" in bad.stderr


def test_movies_render_in_a_temporary_folder_one_at_a_time(studio, tmp_path):
    data = post(studio, "/api/generate", {"prompt": "a person jumps", "seconds": 1, "seed": 2})[1]
    body = {"joints": data["joints"], "fps": 20, "format": "gif", "prompt": "a person jumps"}
    status, response = post(studio, "/api/export", body)
    assert status == 200 and response.body[:6] == b"GIF89a" and response.content_type == "image/gif"
    status, response = post(studio, "/api/export", {**body, "format": "mp4"})
    assert status == 200  # an MP4 with ffmpeg, else the GIF it falls back to, named so
    if response.headers["Content-Disposition"].endswith('motion.mp4"'):
        assert response.content_type == "video/mp4" and response.body[4:8] == b"ftyp"
    else:
        assert response.content_type == "image/gif" and response.body[:6] == b"GIF89a"
    status, error = post(studio, "/api/export", {**body, "joints": data["joints"] * 21})
    assert status == 422 and error["field"] == "joints"
    with studio._movie:  # another movie is rendering
        status, error = post(studio, "/api/export", body)
    assert status == 503 and "movie" in error["error"]
    assert post(studio, "/api/export", {**body, "format": "npy"})[0] == 200  # files other than movies never wait


def test_a_timeline_of_blocks_is_one_take(studio, pipe):
    body = {"segments": [{"prompt": "a person walks forward", "seconds": 3}, {"prompt": "a person turns left",
            "seconds": 2}], "seed": 4}  # fmt: skip
    status, data = post(studio, "/api/timeline", body)
    assert status == 200 and data["frames"] == 100 and len(data["joints"]) == 100
    assert [s["start_frame"] for s in data["segments"]] == [0, 60]
    reference = pipe.generate_timeline([("a person walks forward", 3.0), ("a person turns left", 2.0)], seed=4)
    assert np.abs(np.array(data["joints"]) - reference.joints).max() <= 5e-5
    for bad, field in (({"segments": []}, "segments"), ({"segments": [{"prompt": ""}]}, "segments[0].prompt"),
                       ({"segments": [{"prompt": "walk", "seconds": 99}]}, "segments[0].seconds"),
                       ({"segments": [{"prompt": "walk", "speed": 2}]}, "speed"),
                       ({"segments": [{"prompt": "walk", "seconds": 9.5}] * 13}, "segments"),
                       ({"segments": ["walk"]}, "segments[0]")):  # fmt: skip
        status, error = post(studio, "/api/timeline", bad)
        assert status in (400, 422) and error["field"] == field, error


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_page_generates_a_timeline_take_in_headless_chromium(server, tmp_path):
    url = f"http://127.0.0.1:{server.server_address[1]}/?take"
    run = dump_dom(url, tmp_path)
    assert 'data-state="ready"' in run.stdout and 'data-frames="160"' in run.stdout, run.stdout[-2000:]
    assert run.stdout.count('class="seg') == 3


def test_a_drawn_path_steers_the_pelvis(studio):
    """`trajectory` rows (the path the page draws) steer the pelvis through the installed controller; the answer
    records the control error; bad rows are 422 naming the field."""
    body = {"prompt": "a person walks", "seconds": 4, "seed": 1, "trajectory": [[0, 0, 0], [1.95, 0.8, 1.2],
            [3.95, 1.6, 2.6]]}  # fmt: skip
    status, data = post(studio, "/api/generate", body)
    assert status == 200 and data["control"]["controller"] == "pelvis" and data["control"]["avg_err_m"] < 0.03
    joints = np.array(data["joints"])
    assert (
        np.abs(joints[-1, 0, [0, 2]] - [1.6, 2.6]).max() < 0.05
        and np.abs(joints[40, 0, [0, 2]] - [0.8, 1.2]).max() < 0.05
    )
    for rows in ([[0, 0, 0]], [[0, 0, 0], [1, "x", 0]], [[0, 0, 0], [0, 1, 1]], [[-1, 0, 0], [1, 1, 1]],
                 [[0, 0, 0], [9, 1, 1]], "0,0,0"):  # fmt: skip
        status, error = post(studio, "/api/generate", {**body, "trajectory": rows})
        assert status == 422 and error["field"] == "trajectory", error


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_page_sends_a_path_in_headless_chromium(server, tmp_path):
    url = f"http://127.0.0.1:{server.server_address[1]}/?prompt=a%20person%20walks&path=0,0;1,1;2,3"
    run = dump_dom(url, tmp_path)
    assert 'data-state="ready"' in run.stdout and "control error" in run.stdout, run.stdout[-2000:]


def test_keyframe_targets_put_a_wrist_where_asked(studio):
    """A right-wrist target at 2 s (the page's dragged keyframe) is met through the installed all-joints
    controller; bad targets are 422 naming `keyframes`."""
    target = [-0.35, 1.65, 0.3]
    body = {"prompt": "a person waves with the right hand", "seconds": 4, "seed": 3,
            "keyframes": [{"time": 2.0, "joint": "right_wrist", "position": target}]}  # fmt: skip
    status, data = post(studio, "/api/generate", body)
    assert status == 200 and data["control"]["controller"] == "all" and data["control"]["controlled_points"] == 1
    assert np.abs(np.array(data["joints"])[40, 21] - target).max() < 0.03
    both = {**body, "trajectory": [[0, 0, 0], [3.95, 0.0, 1.5]]}
    status, data = post(studio, "/api/generate", both)
    assert status == 200 and data["control"]["controlled_points"] == 80 + 1  # the path at every frame, the wrist once
    for keys in ([], [{"time": 9, "joint": "right_wrist", "position": target}],
                 [{"time": 1, "joint": "tail", "position": target}], [{"time": 1, "joint": "head", "position": [1, 2]}],
                 [{"time": 1, "joint": "head"}], [{"time": "1", "joint": "head", "position": target}]):  # fmt: skip
        status, error = post(studio, "/api/generate", {**body, "keyframes": keys})
        assert status == 422 and error["field"] == "keyframes", error


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_the_page_sends_a_keyframe_in_headless_chromium(server, tmp_path):
    url = f"http://127.0.0.1:{server.server_address[1]}/?prompt=a%20person%20waves&key=2:right_wrist:-0.3,1.6,0.3"
    run = dump_dom(url, tmp_path)
    assert 'data-state="ready"' in run.stdout and "control error" in run.stdout, run.stdout[-2000:]
    assert "right_wrist at 2.00 s" in run.stdout


JS = Path(__file__).resolve().parents[1] / "js"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_a_user_types_and_the_character_moves_in_chromium(tmp_path):
    """`motionlcm studio` on a free port, driven in Chromium by playwright-core: type a prompt, the viewer shows
    the motion, two canvas screenshots 0.5 s apart differ, the BVH download parses. Only this server was
    contacted. MOTIONLCM_STUDIO_SCREENSHOT=PATH also saves the page there (docs/img/studio.png)."""
    import os
    import re
    import sys

    if shutil.which("node") is None or not (JS / "node_modules" / "playwright-core").is_dir():
        pytest.skip("node or tests/js/node_modules is missing: run `(cd tests/js && npm ci)`")
    proc = subprocess.Popen([sys.executable, "-m", "motionlcm.cli", "studio", "--port", "0"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        url = re.search(r"(http://\S+/)", proc.stdout.readline()).group(1)
        run = subprocess.run(["node", str(JS / "studio_browser.mjs"), url, CHROMIUM, str(tmp_path)],
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    result = json.loads((tmp_path / "result.json").read_text())
    assert run.returncode == 0, run.stderr[-3000:] + "\n".join(result["console"])
    assert result["frames"] == "80" and "a person walks forward" not in result["status"]  # the status, not the prompt
    assert result["differ"], "two canvas screenshots 0.5 s apart are the same: the character does not move"
    assert all(u.startswith(url) for u in result["requests"]), result["requests"]
    assert not [line for line in result["console"] if line.startswith(("error", "pageerror"))], result["console"]
    from motionlcm.export.bvh_export import bvh_to_joints
    from motionlcm.io.bvh import read_bvh

    joints = bvh_to_joints(read_bvh(tmp_path / "motion.bvh"))
    assert result["download"].endswith(".bvh") and joints.shape[1:] == (22, 3) and len(joints) >= 80
    ankles = joints[:, [7, 8], 1]
    assert (ankles.max(0) - ankles.min(0)).min() > 0.05  # the downloaded walk steps
    if os.environ.get("MOTIONLCM_STUDIO_SCREENSHOT"):
        shutil.copy(tmp_path / "page.png", os.environ["MOTIONLCM_STUDIO_SCREENSHOT"])


def test_the_page_can_choose_between_models(pipe):
    """Several models (`--model A --model B`): health lists them, a request names one, an unknown name is 422."""
    from motionlcm.pipeline import MotionLCM

    other = MotionLCM.from_pretrained()
    studio = Studio({"bandai-namco": pipe, "copy": other})
    assert [m["name"] for m in studio.health()["models"]] == ["bandai-namco", "copy"]
    body = {"prompt": "a person walks", "seconds": 2, "seed": 5}
    a = post(studio, "/api/generate", {**body, "model": "copy"})[1]
    b = post(studio, "/api/generate", body)[1]
    assert a["joints"] == b["joints"]  # the same weights: the same motion
    status, error = post(studio, "/api/generate", {**body, "model": "nope"})
    assert status == 422 and error["field"] == "model"
    status, data = post(studio, "/api/timeline", {"segments": [{"prompt": "walk", "seconds": 1}], "model": "copy"})
    assert status == 200
