"""`social-xlstm serve`: the dashboard's JSON API (FastAPI's TestClient, values checked against the
forecaster itself), the CLI's one-line errors, and the page in a real headless Chromium."""

import json
import os
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import every_second_step, free_port, renamed_sensors, rewritten, write_without_sensors

from social_xlstm.cli import main
from social_xlstm.data.dataset import read_dataset

pytestmark = pytest.mark.xdist_group("dashboard")  # one trained model for the whole module

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOT = Path(tempfile.gettempdir()) / "social-xlstm-dashboard.png"


@pytest.fixture(scope="module")
def state(bundle_dir, demo_dir):
    from social_xlstm.dashboard import load_dashboard

    return load_dashboard(bundle_dir, demo_dir)


@pytest.fixture(scope="module")
def client(state):
    from fastapi.testclient import TestClient

    from social_xlstm.dashboard import create_app

    return TestClient(create_app(state), raise_server_exceptions=False)


@pytest.fixture(scope="module")
def direct(bundle_dir, demo_dir):
    """Forecasts computed without the dashboard: the bundle on the window ending at a time step."""
    from social_xlstm.export.bundle import Bundle
    from social_xlstm.export.predict import latest_window

    bundle, dataset = Bundle.load(bundle_dir), read_dataset(demo_dir)

    def forecast(origin):
        return bundle.forecast(*latest_window(dataset, bundle, origin))

    return bundle, dataset, forecast


def as_array(nested):
    return np.array(
        [[np.nan if v is None else v for v in row] for row in nested]
        if isinstance(nested[0], list)
        else [np.nan if v is None else v for v in nested],
        dtype=np.float64,
    )


# --- the JSON API ----------------------------------------------------------------------------


def test_meta_and_sensors_describe_the_model_and_the_latest_readings(client, direct):
    bundle, dataset, _ = direct
    meta = client.get("/api/meta").json()
    assert meta["horizons"] == list(bundle.horizons) and meta["targets"] == list(bundle.targets)
    assert meta["minutes"] == [5.0 * h for h in bundle.horizons]
    assert meta["input_len"] == bundle.input_len and meta["num_sensors"] == 8
    assert meta["latest_origin"] == dataset.timestamps[-1].isoformat()
    assert meta["first_origin"] == dataset.timestamps[bundle.input_len - 1].isoformat()
    assert set(meta["colour_ranges"]) == set(bundle.targets) and meta["limits"]["max_history"] == 2016

    body = client.get("/api/sensors").json()
    assert [s["sensor_id"] for s in body["sensors"]] == list(bundle.sensor_ids)
    coordinates = bundle.sensors.set_index("sensor_id")
    last = dataset.values[-1]
    for sensor in body["sensors"]:
        n = dataset.sensor_ids.index(sensor["sensor_id"])
        assert sensor["latitude"] == pytest.approx(coordinates.loc[sensor["sensor_id"], "latitude"])
        assert sensor["longitude"] == pytest.approx(coordinates.loc[sensor["sensor_id"], "longitude"])
        assert as_array([sensor["current"][f] for f in dataset.features]) == pytest.approx(last[n], nan_ok=True)


@pytest.mark.parametrize("step_back", [0, 100])
def test_forecast_equals_the_forecaster_on_the_same_window(client, direct, step_back):
    bundle, dataset, forecast = direct
    origin = dataset.timestamps[-1 - step_back]
    at = "latest" if step_back == 0 else origin.isoformat()
    response = client.get("/api/forecast", params={"at": at})
    assert response.status_code == 200, response.text
    body = response.json()
    expected = forecast(origin)  # [H, N, G]
    h, n, g = len(bundle.horizons), len(bundle.sensor_ids), len(bundle.targets)
    assert expected.shape == (h, n, g)
    assert body["origin"] == origin.isoformat() and body["sensor_ids"] == list(bundle.sensor_ids)
    assert body["timestamps"] == [(origin + k * pd.Timedelta("5min")).isoformat() for k in bundle.horizons]
    for i, target in enumerate(bundle.targets):
        got = as_array(body["forecast"][target])
        assert got.shape == (h, n)
        np.testing.assert_allclose(got, expected[:, :, i], rtol=1e-6, atol=1e-6)
    columns = pd.Index(dataset.sensor_ids).get_indexer(bundle.sensor_ids)
    row = dataset.values[dataset.timestamps.get_loc(origin)][columns]
    for f, feature in enumerate(dataset.features):
        np.testing.assert_allclose(as_array(body["observed"][feature]), row[:, f])


def test_concurrent_requests_for_one_origin_run_the_forecaster_once(bundle_dir, demo_dir, monkeypatch):
    from fastapi.testclient import TestClient

    from social_xlstm.dashboard import create_app, load_dashboard
    from social_xlstm.dashboard import state as state_module

    one_forecast = 12 * 8 * 2 * 8  # horizons x sensors x targets, float64
    monkeypatch.setattr(state_module, "FORECAST_CACHE_BYTES", 3 * one_forecast)
    monkeypatch.setattr(state_module, "RESPONSE_CACHE_BYTES", 1)  # the newest response only
    state = load_dashboard(bundle_dir, demo_dir)
    calls = []
    forecast = state.forecaster.forecast
    state.forecaster.forecast = lambda values, timestamps: calls.append(timestamps[-1]) or forecast(values, timestamps)
    client = TestClient(create_app(state))
    origin = state.dataset.timestamps[-7]
    paths = ["/api/forecast", f"/api/sensors/{state.sensor_ids[0]}"] * 8
    bodies = {}

    def get(path):
        response = client.get(path, params={"at": origin.isoformat()})
        assert response.status_code == 200, response.text
        bodies.setdefault(path, set()).add(response.content)

    threads = [threading.Thread(target=get, args=(p,)) for p in paths]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == [origin]  # 16 requests, one model run
    assert all(len(seen) == 1 for seen in bodies.values())
    # the cache is bounded: past three forecasts the least recently used origin is forecast again
    for k in range(3):
        assert client.get("/api/forecast", params={"at": state.dataset.timestamps[-100 - k].isoformat()}).is_success
    assert len(calls) == 4
    assert client.get("/api/forecast", params={"at": origin.isoformat()}).content in bodies["/api/forecast"]
    assert len(calls) == 5


def test_an_origin_between_time_steps_or_without_zone_uses_the_step_before(client, direct):
    _, dataset, _ = direct
    origin = dataset.timestamps[-50]
    naive = (origin + pd.Timedelta("2min")).tz_localize(None).isoformat()  # the data's own time zone
    assert client.get("/api/forecast", params={"at": naive}).json()["origin"] == origin.isoformat()
    in_utc = (origin + pd.Timedelta("4min")).tz_convert("UTC").isoformat()
    assert client.get("/api/forecast", params={"at": in_utc}).json()["origin"] == origin.isoformat()


def test_sensor_detail_has_its_history_and_its_forecast(client, direct):
    bundle, dataset, forecast = direct
    sensor_id = bundle.sensor_ids[3]
    origin = dataset.timestamps[-20]
    response = client.get(f"/api/sensors/{sensor_id}", params={"history": 30, "at": origin.isoformat()})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["sensor_id"] == sensor_id and body["origin"] == origin.isoformat()
    end = dataset.timestamps.get_loc(origin)
    assert body["history"]["timestamps"] == [t.isoformat() for t in dataset.timestamps[end - 29 : end + 1]]
    n_data = dataset.sensor_ids.index(sensor_id)
    for f, feature in enumerate(dataset.features):
        np.testing.assert_allclose(
            as_array(body["history"]["values"][feature]), dataset.values[end - 29 : end + 1, n_data, f]
        )
    expected = forecast(origin)[:, bundle.sensor_ids.index(sensor_id)]  # [H, G]
    assert body["forecast"]["horizons"] == list(bundle.horizons)
    for i, target in enumerate(bundle.targets):
        np.testing.assert_allclose(as_array(body["forecast"]["values"][target]), expected[:, i], rtol=1e-6, atol=1e-6)
    # the default history, and a history longer than the data so far is cut at its start
    assert len(client.get(f"/api/sensors/{sensor_id}").json()["history"]["timestamps"]) == 72
    first = dataset.timestamps[bundle.input_len - 1].isoformat()
    short = client.get(f"/api/sensors/{sensor_id}", params={"history": 2016, "at": first}).json()
    assert len(short["history"]["timestamps"]) == bundle.input_len


def test_unknown_sensor_is_404_with_a_message(client):
    response = client.get("/api/sensors/VD-no-such-sensor")
    assert response.status_code == 404
    assert "unknown sensor 'VD-no-such-sensor'" in response.json()["detail"]


@pytest.mark.parametrize(
    "url, words",
    [
        ("/api/sensors/{id}?history=0", "history"),
        ("/api/sensors/{id}?history=2017", "less than or equal to 2016"),
        ("/api/sensors/{id}?history=ten", "history"),
        ("/api/forecast?at=yesterday-ish", "expected 'latest' or an ISO-8601 time"),
        ("/api/forecast?at=1999-01-01T00:00", "outside the forecastable range"),
        ("/api/forecast?at=2999-01-01T00:00", "outside the forecastable range"),
        ("/api/forecast?at=" + "9" * 41, "at most 40 characters"),
        ("/api/sensors/{id}?at=2024-13-45", "expected 'latest' or an ISO-8601 time"),
    ],
)
def test_bad_query_values_are_422_with_a_message(client, direct, url, words):
    response = client.get(url.format(id=direct[0].sensor_ids[0]))
    assert response.status_code == 422, response.text
    assert words in response.json()["detail"]


def test_limits_and_never_a_500(client, direct):
    sensor_id = direct[0].sensor_ids[0]
    big = client.request("GET", "/api/forecast", content=b"x" * 5000)
    assert big.status_code == 413 and "too large" in big.json()["detail"]
    assert client.post("/api/forecast").status_code == 405
    long_id = client.get("/api/sensors/" + "x" * 500)
    assert long_id.status_code == 422
    for url in [
        "/api/sensors/%00",
        "/api/sensors/a%2Fb",
        "/api/sensors/" + sensor_id + "?history=-1",
        "/api/forecast?at=",
        "/api/forecast?at=NaT",
        "/api/forecast?at=%00",
        "/api/forecast?at=latest&at=now",
        "/api/forecast?at=1e400",
        "/api/sensors/" + sensor_id + "?history=1e9",
        "/api/sensors/" + sensor_id + "?at=-99999-01-01",
        "/api/forecast?at=2024-03-10T02:30",
        "/nope",
        "/static/../pyproject.toml",
        "/api/meta?x=" + "y" * 4000,
    ]:
        response = client.get(url)
        assert response.status_code < 500, (url, response.text)
        assert "Traceback" not in response.text, url
        if response.status_code >= 400:
            assert isinstance(response.json()["detail"], str), (url, response.text)
    assert client.get("/api/meta").headers["x-content-type-options"] == "nosniff"


def test_the_page_its_assets_and_the_api_reference_are_served_locally(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "http://" not in page.text and "https://" not in page.text  # nothing from the internet
    assert "default-src 'self'" in page.headers["content-security-policy"]
    plotly = client.get("/vendor/plotly.min.js")
    assert plotly.status_code == 200 and len(plotly.content) > 1_000_000 and b"plotly" in plotly.content[:2000].lower()
    assert client.get("/static/app.js").status_code == 200
    paths = set(client.get("/openapi.json").json()["paths"])
    assert {"/api/meta", "/api/sensors", "/api/forecast", "/api/sensors/{sensor_id}"} <= paths
    docs = client.get("/docs")
    assert docs.status_code == 200 and "/api/forecast" in docs.text and "cdn" not in docs.text.lower()


def test_a_run_directory_serves_the_same_forecasts(run_dir, demo_dir, state):
    from social_xlstm.dashboard import load_dashboard

    from_run = load_dashboard(run_dir, demo_dir)
    assert from_run.sensor_ids == state.sensor_ids
    np.testing.assert_allclose(
        from_run.forecast(from_run.latest_origin), state.forecast(state.latest_origin), rtol=1e-5, atol=1e-3
    )  # as `predict` compares a run with its bundle


# --- the command -----------------------------------------------------------------------------


@pytest.fixture
def no_server(monkeypatch):
    """Replace uvicorn: record what `serve` would have served instead of blocking."""
    import social_xlstm.dashboard as dashboard

    calls = []
    monkeypatch.setattr(dashboard, "run_server", lambda app, host, port: calls.append((app, host, port)))
    return calls


def test_serve_starts_the_server_on_loopback_by_default(bundle_dir, demo_dir, no_server, capsys):
    assert main(["serve", str(bundle_dir), "--data", str(demo_dir), "--port", str(free_port())]) == 0
    ((app, host, port),) = no_server
    assert host == "127.0.0.1" and "http://127.0.0.1:" in capsys.readouterr().out


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_serve_refuses_a_broken_bundle_before_starting(bundle_dir, demo_dir, tmp_path, no_server, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(bundle_dir, broken)
    (broken / "metadata.json").write_text(json.dumps({"format": "something else"}))
    assert main(["serve", str(broken), "--data", str(demo_dir)]) == 2
    assert "error:" in one_line_error(capsys) and not no_server
    assert main(["serve", str(tmp_path / "missing"), "--data", str(demo_dir)]) == 2
    assert "error:" in one_line_error(capsys) and not no_server


def test_serve_refuses_data_without_the_models_sensors(bundle_dir, demo_dir, tmp_path, no_server, capsys):
    gone = write_without_sensors(demo_dir, tmp_path / "fewer", (2, 5))
    assert main(["serve", str(bundle_dir), "--data", str(tmp_path / "fewer")]) == 2
    err = one_line_error(capsys)
    assert gone[0] in err and "--allow-absent-sensors shows the others" in err and not no_server
    other = rewritten(demo_dir, tmp_path / "other", renamed_sensors)  # not one of the model's: no "others"
    assert main(["serve", str(bundle_dir), "--data", other, "--allow-absent-sensors"]) == 2
    err = one_line_error(capsys)
    assert "8 of the model's 8 sensors are not in the dataset" in err and err.endswith("was trained for?")


def test_serve_refuses_readings_of_another_interval(bundle_dir, demo_dir, tmp_path, no_server, capsys):
    ten = rewritten(demo_dir, tmp_path / "ten", every_second_step)
    assert main(["serve", str(bundle_dir), "--data", ten]) == 2
    err = one_line_error(capsys)
    assert f"{ten}: readings every 10min, where the model ({bundle_dir}) was trained on readings every 5min" in err
    assert not no_server


def test_sensors_removed_since_training_show_no_readings_and_no_forecast_when_allowed(
    bundle_dir, demo_dir, tmp_path, direct
):
    """Independent truth: the bundle on the full window with the removed sensors' readings set to NaN."""
    from fastapi.testclient import TestClient

    from social_xlstm.dashboard import create_app, load_dashboard

    bundle, dataset, _ = direct
    gone = write_without_sensors(demo_dir, tmp_path / "fewer", (2, 5))
    client = TestClient(create_app(load_dashboard(bundle_dir, tmp_path / "fewer", allow_absent=True)))
    window = dataset.values[-bundle.input_len :].copy()
    window[:, [2, 5]] = np.nan
    expected = bundle.forecast(window, dataset.timestamps[-bundle.input_len :])
    expected[:, [2, 5]] = np.nan
    body = client.get("/api/forecast").json()
    assert body["sensor_ids"] == list(bundle.sensor_ids)
    for i, target in enumerate(bundle.targets):
        np.testing.assert_allclose(as_array(body["forecast"][target]), expected[:, :, i], rtol=1e-6, atol=1e-6)
    sensors = {s["sensor_id"]: s for s in client.get("/api/sensors").json()["sensors"]}
    assert all(v is None for v in sensors[gone[0]]["current"].values())
    detail = client.get(f"/api/sensors/{gone[1]}", params={"history": 5}).json()
    assert all(v is None for values in detail["history"]["values"].values() for v in values)
    assert all(v is None for values in detail["forecast"]["values"].values() for v in values)


def test_serve_refuses_a_port_in_use(bundle_dir, demo_dir, no_server, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", str(bundle_dir), "--data", str(demo_dir), "--port", str(port)]) == 2
    assert "--port" in one_line_error(capsys) and not no_server


def test_serve_refuses_a_host_that_is_not_this_machine(bundle_dir, demo_dir, no_server, capsys):
    """192.0.2.1 (TEST-NET-1, never assigned) cannot be bound here: the host is wrong, not the port."""
    nonlocal_bind = Path("/proc/sys/net/ipv4/ip_nonlocal_bind")
    if nonlocal_bind.exists() and nonlocal_bind.read_text().strip() != "0":
        pytest.skip("this machine binds addresses it does not have (ip_nonlocal_bind)")
    assert main(["serve", str(bundle_dir), "--data", str(demo_dir), "--host", "192.0.2.1"]) == 2
    assert "--host: 192.0.2.1 is not an address of this machine" in one_line_error(capsys) and not no_server


# --- the page in a real browser ----------------------------------------------------------------


def require_browser():
    """Chromium and its driver from Debian (``make setup`` installs them as root). Without them
    the test skips on a workstation, but fails under CI, where it must run."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package (pip install -e '.[test]')")
    if missing:
        reason = (
            f"browser test needs {', '.join(missing)} "
            "(apt-get install chromium chromium-driver; `make setup` does it as root)"
        )
        if os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
            pytest.fail(f"CI is set but {reason}")
        pytest.skip(reason)


@pytest.fixture
def live_server(client):
    """uvicorn on 127.0.0.1 (a free port) in a background thread, serving the test app."""
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(client.app, host="127.0.0.1", port=free_port(), log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{server.config.port}"
    server.should_exit = True
    thread.join(10)


@pytest.fixture
def browser(tmp_path):
    require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
        "--window-size=1400,900",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    yield driver
    driver.quit()


def test_page_click_on_a_sensor_shows_its_forecast_chart(live_server, browser, direct):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    bundle, _, forecast = direct
    h, n = len(bundle.horizons), len(bundle.sensor_ids)
    wait = WebDriverWait(browser, 60)
    browser.get(live_server + "/")
    wait.until(lambda d: d.execute_script("return document.getElementById('map').dataset.ready === '1'"))
    markers = browser.find_elements(By.CSS_SELECTOR, "#map .scatterlayer .trace path.point")
    assert len(markers) == n  # every sensor drawn (with or without a current reading)

    # a real click on a marker: plotly's own click handler picks the sensor under the pointer
    ids = browser.execute_script("return document.getElementById('map').data[0].customdata")
    first_trace_points = browser.find_elements(By.CSS_SELECTOR, "#map .scatterlayer .trace:first-child path.point")
    k = len(first_trace_points) // 2
    ActionChains(browser).move_to_element(first_trace_points[k]).click().perform()
    wait.until(lambda d: d.execute_script("return document.getElementById('sensor-chart').dataset.sensorId || null"))
    clicked = browser.execute_script("return document.getElementById('sensor-chart').dataset.sensorId")
    # two sensors of the demo (one per direction) can sit almost on top of each other: the click
    # lands on the one under the pointer, which is this marker or its twin a few pixels away
    assert clicked in ids
    assert browser.find_element(By.ID, "sensor-title").text == f"sensor {clicked}"

    chart = browser.execute_script(
        "return document.getElementById('sensor-chart').data.map(t => ({name: t.name, x: t.x, y: t.y}))"
    )
    expected = forecast(bundle_origin(browser))[:, bundle.sensor_ids.index(clicked)]
    for i, target in enumerate(bundle.targets):
        trace = next(t for t in chart if t["name"] == f"{target} forecast")
        assert len(trace["x"]) == h
        np.testing.assert_allclose(np.array(trace["y"], dtype=float), expected[:, i], rtol=1e-5, atol=1e-5)
    drawn = browser.execute_script(
        "return Array.from(document.querySelectorAll('#sensor-chart .scatterlayer .trace'))"
        ".map(t => t.querySelectorAll('path.point').length)"
    )
    assert drawn.count(h) >= len(bundle.targets)  # the H forecast points are drawn, per target

    # the horizon selector re-colours the map with the forecast at that horizon
    Select(browser.find_element(By.ID, "horizon")).select_by_visible_text("+15 min")
    wait.until(lambda d: "+15 min" in d.execute_script("return document.getElementById('map').layout.title.text"))
    colours = browser.execute_script("return document.getElementById('map').data[0].marker.color")
    shown = browser.execute_script("return document.getElementById('map').data[0].customdata")
    speed = bundle.targets.index("speed")
    at_15 = forecast(bundle_origin(browser))[bundle.horizons.index(3), :, speed]
    np.testing.assert_allclose(colours, [at_15[bundle.sensor_ids.index(s)] for s in shown], rtol=1e-5)

    browser.save_screenshot(str(SCREENSHOT))
    problems = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not problems, problems  # no script error, no blocked resource


def bundle_origin(browser) -> pd.Timestamp:
    return pd.Timestamp(browser.execute_script("return window.dashboard.state.forecast.origin"))


def test_only_the_hosts_it_serves_are_answered(state):
    """DNS rebinding: a page on another site resolves its own name to 127.0.0.1; its requests
    carry that name in Host, and must be refused."""
    from fastapi.testclient import TestClient

    from social_xlstm.cli.serve import served_hosts
    from social_xlstm.dashboard import create_app

    app = create_app(state, served_hosts("127.0.0.1", ["traffic.example.org"]))
    for host, status in [
        ("127.0.0.1:8000", 200),
        ("localhost:8000", 200),
        ("[::1]:8000", 200),
        ("traffic.example.org", 200),
        ("evil.example.com:8000", 400),
        ("127.0.0.1.evil.com", 400),
    ]:
        response = TestClient(app, base_url=f"http://{host}").get("/api/meta")
        assert response.status_code == status, host
    assert served_hosts("0.0.0.0", []) == {"localhost", "127.0.0.1", "::1"}


def test_meta_names_the_sources_without_server_paths(client, bundle_dir, demo_dir):
    meta = client.get("/api/meta").json()
    assert meta["model_source"] == bundle_dir.name and meta["data_source"] == demo_dir.name
    assert "/" not in meta["model_source"] + meta["data_source"]


def test_json_numbers_are_the_float32_forecasts_as_they_print():
    """The API answered 55.599998474121094 for a forecast of 55.6 (float32 widened to float64)."""
    from social_xlstm.dashboard.api import _floats

    forecasts = np.array([[55.6, np.nan], [np.inf, 0.1]], dtype=np.float32)
    assert _floats(forecasts) == [[55.6, None], [None, 0.1]]
    assert json.dumps(_floats(np.float32(63.3))) == "63.3"
    assert _floats(np.array([1 / 3])) == [1 / 3]  # float64 keeps every digit
