// condgen playground: plain JavaScript over the HTTP API (GET /models, POST /{name}/sample,
// /{name}/interpolate, /{name}/edit). No build step, nothing loaded from outside the service.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const KEY_STORAGE = "condgen-api-key";
  const MODES = ["sample", "interpolate", "edit"];

  const state = {
    models: [],
    model: null,          // the chosen entry of GET /models
    mode: null,           // sample, interpolate or edit
    key: sessionStorage.getItem(KEY_STORAGE) || "",
    pending: {},          // slot -> AbortController: a newer request in a slot aborts the older one
    samples: null,        // the last sample response
    player: null,         // {frames, t, alts, index, dir, timer}
    examples: null,       // examples/index.json
    input: null,          // {blob, name, url, label}: the image to edit
    editTimer: 0,
  };

  // ---- talking to the API ------------------------------------------------------------------

  class ApiError extends Error {
    constructor(status, detail) {
      super(detail);
      this.name = "ApiError";
      this.status = status;
    }
  }

  /** FastAPI's detail: a string, or pydantic's list of {loc, msg}. */
  function detailText(detail) {
    if (typeof detail === "string") return detail;
    if (Array.isArray(detail)) {
      return detail.map((d) => {
        const loc = (d && Array.isArray(d.loc) ? d.loc : []).filter(
          (part, i) => !(i === 0 && ["query", "body", "path", "header", "form"].includes(part)));
        const msg = d && d.msg ? d.msg : JSON.stringify(d);
        return loc.length ? `${loc.join(".")}: ${msg}` : msg;
      }).join("; ");
    }
    return JSON.stringify(detail);
  }

  async function api(path, options = {}, slot = null) {
    const headers = Object.assign({}, options.headers);
    if (state.key) headers["X-API-Key"] = state.key;
    let signal;
    if (slot) {
      if (state.pending[slot]) state.pending[slot].abort();
      const controller = new AbortController();
      state.pending[slot] = controller;
      signal = controller.signal;
    }
    let response;
    try {
      response = await fetch(path, Object.assign({}, options, { headers, signal }));
    } catch (err) {
      if (err.name === "AbortError") throw err;
      throw new ApiError(0, `the service cannot be reached (${err.message})`);
    }
    const type = response.headers.get("content-type") || "";
    if (!response.ok) {
      let detail = `${response.status} ${response.statusText}`.trim();
      try {
        if (type.includes("json")) {
          const body = await response.json();
          if (body && body.detail !== undefined) detail = detailText(body.detail);
        } else {
          const text = (await response.text()).trim();
          if (text) detail = text.slice(0, 500);
        }
      } catch (err) { /* keep the status line */ }
      const error = new ApiError(response.status, detail);
      error.retryAfter = response.headers.get("Retry-After");
      throw error;
    }
    return type.includes("json") ? response.json() : response;
  }

  function cancel(slot) {
    if (state.pending[slot]) state.pending[slot].abort();
    delete state.pending[slot];
  }

  // ---- status and errors -------------------------------------------------------------------

  function setStatus(text) { $("status").textContent = text; }

  function clearError() {
    $("error").hidden = true;
    $("error").textContent = "";
  }

  function showError(err) {
    if (err && err.name === "AbortError") return;
    const box = $("error");
    box.replaceChildren();
    const head = document.createElement("strong");
    const status = err && err.status;
    head.textContent = status ? `The service answered ${status}: ` : "Error: ";
    const text = document.createElement("span");
    text.className = "error-detail";
    text.textContent = err && err.message ? err.message : String(err);
    box.append(head, text);
    if (status === 401) {
      $("key-box").open = true;
      box.append(`${/[.!?]$/.test(text.textContent) ? "" : "."} Enter the key under \u201cAPI key\u201d.`);
    } else if (status === 503 && err.retryAfter) {
      box.append(`${/[.!?]$/.test(text.textContent) ? "" : "."} Try again in ${err.retryAfter} s.`);
    }
    box.hidden = false;
    setStatus("");
  }

  function busy(region, on) {
    const el = $(region);
    if (el) el.setAttribute("aria-busy", on ? "true" : "false");
  }

  // ---- small helpers -----------------------------------------------------------------------

  const pretty = (slug) => String(slug).replace(/_/g, " ");
  const png = (b64) => `data:image/png;base64,${b64}`;

  function randomSeed() {
    return String(crypto.getRandomValues(new Uint32Array(1))[0]);
  }

  /** How many CSS pixels to show an image of `size` pixels at: a whole multiple near `target`. */
  function shown(size, target) {
    return size * Math.max(1, Math.round(target / size));
  }

  function option(value, text) {
    const o = document.createElement("option");
    o.value = value;
    o.textContent = text;
    return o;
  }

  function saveHash() {
    const params = new URLSearchParams();
    if (state.model) params.set("model", state.model.name);
    if (state.mode) params.set("mode", state.mode);
    history.replaceState(null, "", `#${params}`);
  }

  function hashParams() {
    return new URLSearchParams(location.hash.replace(/^#/, ""));
  }

  // ---- models ------------------------------------------------------------------------------

  async function loadModels() {
    clearError();
    setStatus("Loading the models\u2026");
    let list;
    try {
      list = await api("/models", {}, "models");
    } catch (err) {
      showError(err);
      if (err.status === 401) $("api-key").focus();
      $("model").replaceChildren(option("", "no models"));
      return;
    }
    setStatus("");
    state.models = list;
    const select = $("model");
    select.replaceChildren();
    for (const m of list) {
      const ready = m.status === "ready";
      const o = option(m.name, ready ? `${m.name} (${m.family})` : `${m.name} (not loaded)`);
      if (!ready) {
        o.disabled = true;
        o.title = m.reason || "";
      }
      select.append(o);
    }
    const ready = list.filter((m) => m.status === "ready");
    $("no-models").hidden = ready.length > 0;
    if (!ready.length) {
      select.disabled = true;
      $("modes").hidden = true;
      for (const mode of MODES) $(`panel-${mode}`).hidden = true;
      return;
    }
    select.disabled = false;
    const wanted = hashParams().get("model") || (state.model && state.model.name);
    const pick = ready.find((m) => m.name === wanted) || ready[0];
    select.value = pick.name;
    chooseModel(pick.name, hashParams().get("mode"));
  }

  function describe(m) {
    const parts = [m.family];
    if (m.classes) parts.push(`${m.classes.length} classes`);
    if (m.attributes) parts.push(`${m.attributes.length} attributes`);
    parts.push(`${m.image_size}\u00d7${m.image_size} ${m.channels === 1 ? "grey" : "colour"}`);
    const t = m.training || {};
    if (t.dataset) parts.push(`trained on ${t.dataset}${t.steps ? `, ${t.steps} steps` : ""}`);
    parts.push(`on ${m.device}`);
    return parts.join(" \u00b7 ");
  }

  function chooseModel(name, preferredMode) {
    const m = state.models.find((x) => x.name === name);
    if (!m) return;
    const changed = !state.model || state.model.name !== m.name;
    state.model = m;
    $("model-info").textContent = describe(m);
    clearError();
    if (changed) resetResults();
    const ops = m.operations || [];
    $("tab-sample").hidden = !ops.includes("sample");
    $("tab-interpolate").hidden = !ops.includes("interpolate");
    $("tab-edit").hidden = !ops.includes("edit");
    $("modes").hidden = false;
    document.documentElement.style.setProperty("--cell", `${shown(m.image_size, 96)}px`);
    document.documentElement.style.setProperty("--frame", `${shown(m.image_size, 192)}px`);
    if (m.classes) fillClasses(m.classes);
    if (m.attributes) buildAttributeControls(m);
    const available = MODES.filter((mode) => ops.includes(mode));
    const mode = [preferredMode, state.mode].find((x) => available.includes(x)) || available[0];
    selectMode(mode, false);
  }

  function resetResults() {
    for (const slot of Object.keys(state.pending)) cancel(slot);
    state.samples = null;
    $("sample-grid").replaceChildren();
    $("sample-picked").hidden = true;
    stopPlayer();
    state.player = null;
    $("player").hidden = true;
    $("edit-output").hidden = true;
    $("edit-output").removeAttribute("src");
    $("edit-output-empty").hidden = false;
    $("edit-output-caption").textContent = "Edited";
    $("edit-flips-row").hidden = true;
    $("edit-flips-row").replaceChildren();
    setStatus("");
  }

  function fillClasses(classes) {
    const defaults = { "sample-class": 0, "from-class": 0, "to-class": Math.min(1, classes.length - 1) };
    for (const [id, index] of Object.entries(defaults)) {
      const select = $(id);
      const keep = select.value;
      select.replaceChildren(...classes.map((c, i) => option(c, `${pretty(c)} (${i})`)));
      select.value = classes.includes(keep) ? keep : classes[index];
    }
  }

  // ---- modes (an ARIA tab list) ------------------------------------------------------------

  function selectMode(mode, focus) {
    state.mode = mode;
    for (const m of MODES) {
      const tab = $(`tab-${m}`);
      const on = m === mode;
      tab.setAttribute("aria-selected", on ? "true" : "false");
      tab.tabIndex = on ? 0 : -1;
      $(`panel-${m}`).hidden = !on;
    }
    if (focus) $(`tab-${mode}`).focus();
    if (mode !== "interpolate") stopPlayer();
    else if (state.player && !state.player.userPaused) startPlayer();
    saveHash();
    if (mode === "sample" && !state.samples && !state.pending.sample) runSample();
    if (mode === "edit") loadExamples();
  }

  function onTabKey(event) {
    const tabs = MODES.map((m) => $(`tab-${m}`)).filter((t) => !t.hidden);
    const i = tabs.indexOf(document.activeElement);
    if (i < 0) return;
    let next = null;
    if (event.key === "ArrowRight" || event.key === "ArrowDown") next = tabs[(i + 1) % tabs.length];
    else if (event.key === "ArrowLeft" || event.key === "ArrowUp") next = tabs[(i - 1 + tabs.length) % tabs.length];
    else if (event.key === "Home") next = tabs[0];
    else if (event.key === "End") next = tabs[tabs.length - 1];
    if (next) {
      event.preventDefault();
      selectMode(next.id.replace("tab-", ""), true);
    }
  }

  // ---- sample ------------------------------------------------------------------------------

  async function runSample() {
    const m = state.model;
    if (!m || !(m.operations || []).includes("sample")) return;
    const cls = $("sample-class").value;
    const params = new URLSearchParams({ class: cls, format: "json" });
    const n = $("sample-n").value.trim();
    if (n !== "") params.set("n", n);
    const seed = $("sample-seed").value.trim();
    if (seed !== "") params.set("seed", seed);
    if ($("sample-truncate").checked) params.set("truncation", $("sample-truncation").value);
    clearError();
    busy("panel-sample", true);
    setStatus(`Sampling ${n || 1} \u00d7 ${pretty(cls)}\u2026`);
    const started = performance.now();
    try {
      const body = await api(`/${encodeURIComponent(m.name)}/sample?${params}`, { method: "POST" }, "sample");
      if (state.model !== m) return;
      if (seed === "") $("sample-seed").value = String(body.seeds[0]);
      renderSamples(body);
      const ms = Math.round(performance.now() - started);
      setStatus(`${body.images.length} \u00d7 ${pretty(body.class)}, seeds ${body.seeds[0]}\u2013${body.seeds[body.seeds.length - 1]}, in ${ms} ms. Choose an image to see its seed.`);
    } catch (err) {
      if (err.name !== "AbortError") showError(err);
    } finally {
      busy("panel-sample", false);
    }
  }

  function renderSamples(body) {
    state.samples = body;
    const grid = $("sample-grid");
    grid.replaceChildren();
    body.images.forEach((b64, i) => {
      const button = document.createElement("button");
      button.type = "button";
      button.className = "cell";
      button.setAttribute("aria-pressed", "false");
      button.title = `seed ${body.seeds[i]}`;
      const img = document.createElement("img");
      img.src = png(b64);
      img.alt = `${pretty(body.class)}, seed ${body.seeds[i]}`;
      button.append(img);
      button.addEventListener("click", () => pickSample(i));
      grid.append(button);
    });
    grid.dataset.class = body.class;
    grid.dataset.seed = String(body.seeds[0]);
    if (body.images.length === 1) pickSample(0, false);
    else $("sample-picked").hidden = true;
  }

  function pickSample(i, announce = true) {
    const body = state.samples;
    if (!body) return;
    $("sample-grid").querySelectorAll(".cell").forEach((b, j) => b.setAttribute("aria-pressed", j === i ? "true" : "false"));
    const seed = body.seeds[i];
    const img = $("picked-image");
    img.src = png(body.images[i]);
    img.alt = `${pretty(body.class)}, seed ${seed}, enlarged`;
    $("picked-text").textContent = `Seed ${seed} \u00b7 class ${pretty(body.class)} \u00b7 image ${i + 1} of ${body.images.length}`;
    const link = $("picked-download");
    link.href = img.src;
    link.download = `${body.model}-${body.class}-${seed}.png`;
    $("sample-picked").hidden = false;
    $("sample-picked").dataset.seed = String(seed);
    $("sample-picked").dataset.class = body.class;
    if (announce) setStatus(`Seed ${seed} (${pretty(body.class)}).`);
  }

  // ---- interpolate -------------------------------------------------------------------------

  async function runInterpolate() {
    const m = state.model;
    if (!m || !(m.operations || []).includes("interpolate")) return;
    for (const id of ["from-seed", "to-seed"]) if ($(id).value.trim() === "") $(id).value = randomSeed();
    const point = (side) => ({ class: $(`${side}-class`).value, seed: seedValue($(`${side}-seed`).value) });
    const body = { from: point("from"), to: point("to"), method: $("interp-method").value, format: "json" };
    const steps = $("interp-steps").value.trim();
    if (steps !== "") body.steps = Number(steps);
    clearError();
    busy("panel-interpolate", true);
    setStatus(`Interpolating ${pretty(body.from.class)} \u2192 ${pretty(body.to.class)}\u2026`);
    try {
      const out = await api(`/${encodeURIComponent(m.name)}/interpolate`, {
        method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
      }, "interpolate");
      if (state.model !== m) return;
      showPlayer(out);
      setStatus(`${out.images.length} frames from ${pretty(out.from.class)} (seed ${out.from.seed}) to ${pretty(out.to.class)} (seed ${out.to.seed}), ${out.method}.`);
    } catch (err) {
      if (err.name !== "AbortError") showError(err);
    } finally {
      busy("panel-interpolate", false);
    }
  }

  /** A seed as typed: digits become a JSON number when exact in JavaScript, else stay text for the API to judge. */
  function seedValue(text) {
    const t = text.trim();
    return /^\d{1,15}$/.test(t) ? Number(t) : t;
  }

  function showPlayer(out) {
    stopPlayer();
    const n = out.images.length;
    const describeFrame = (i) => `Frame ${i + 1} of ${n} from ${pretty(out.from.class)} seed ${out.from.seed} to ${pretty(out.to.class)} seed ${out.to.seed}`;
    state.player = {
      frames: out.images.map(png), t: out.t, alt: describeFrame, index: 0, dir: 1, timer: 0,
      userPaused: window.matchMedia("(prefers-reduced-motion: reduce)").matches,
    };
    const scrub = $("player-scrub");
    scrub.max = String(n - 1);
    const strip = $("player-strip");
    strip.replaceChildren();
    state.player.frames.forEach((src, i) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = "thumb";
      const img = document.createElement("img");
      img.src = src;
      img.alt = `frame ${i + 1}, t = ${out.t[i]}`;
      b.append(img);
      b.addEventListener("click", () => { pausePlayer(); showFrame(i); });
      strip.append(b);
    });
    $("player").hidden = false;
    showFrame(0);
    if (!state.player.userPaused) startPlayer();
    updateToggle();
  }

  function showFrame(i) {
    const p = state.player;
    if (!p) return;
    p.index = i;
    const img = $("player-image");
    img.src = p.frames[i];
    img.alt = p.alt(i);
    $("player-scrub").value = String(i);
    $("player-scrub").setAttribute("aria-valuetext", `frame ${i + 1} of ${p.frames.length}, t = ${p.t[i]}`);
    $("player-frame").textContent = `${i + 1} / ${p.frames.length} \u00b7 t = ${Number(p.t[i]).toFixed(2)}`;
    $("player").dataset.frame = String(i);
    $("player-strip").querySelectorAll(".thumb").forEach((b, j) => {
      if (j === i) b.setAttribute("aria-current", "true");
      else b.removeAttribute("aria-current");
    });
  }

  function tick() {
    const p = state.player;
    if (!p || p.frames.length < 2) return;
    let next = p.index + p.dir;
    if (next >= p.frames.length || next < 0) {  // back and forth, so the loop has no jump
      p.dir = -p.dir;
      next = p.index + p.dir;
    }
    showFrame(next);
  }

  function startPlayer() {
    const p = state.player;
    if (!p || p.timer || state.mode !== "interpolate") return;
    p.timer = setInterval(tick, 1000 / Number($("player-fps").value));
    updateToggle();
  }

  function stopPlayer() {
    const p = state.player;
    if (p && p.timer) {
      clearInterval(p.timer);
      p.timer = 0;
    }
    updateToggle();
  }

  function pausePlayer() {
    if (state.player) state.player.userPaused = true;
    stopPlayer();
  }

  function updateToggle() {
    const playing = Boolean(state.player && state.player.timer);
    $("player-toggle").textContent = playing ? "Pause" : "Play";
    $("player-toggle").setAttribute("aria-pressed", playing ? "true" : "false");
    $("player").dataset.playing = playing ? "true" : "false";
  }

  // ---- edit --------------------------------------------------------------------------------

  function attributeLayout(m) {
    const names = m.attributes || [];
    const groups = (m.attribute_groups || []).filter((g) => g.length > 0 && g.every((a) => names.includes(a)));
    const grouped = new Set(groups.flat());
    return { names, groups, singles: names.filter((a) => !grouped.has(a)) };
  }

  /** tone_light, tone_dark -> "tone_"; no shared word -> "". */
  function sharedPrefix(group) {
    if (group.length < 2) return "";
    let prefix = group[0];
    for (const a of group) while (!a.startsWith(prefix)) prefix = prefix.slice(0, -1);
    const cut = prefix.lastIndexOf("_");
    return cut > 0 ? prefix.slice(0, cut + 1) : "";
  }

  function buildAttributeControls(m) {
    const { names, groups, singles } = attributeLayout(m);
    for (const kind of ["source", "target"]) {
      const box = $(`${kind}-attrs`);
      box.replaceChildren();
      groups.forEach((group, gi) => {
        const prefix = sharedPrefix(group);
        const fs = document.createElement("fieldset");
        fs.className = "group";
        const legend = document.createElement("legend");
        legend.textContent = prefix ? pretty(prefix.slice(0, -1)) : `one of (group ${gi + 1})`;
        fs.append(legend);
        const choices = [...group.map((a) => [a, pretty(a.slice(prefix.length) || a)]), ["", "none of these"]];
        for (const [value, text] of choices) {
          const id = `${kind}-g${gi}-${value ? names.indexOf(value) : "none"}`;
          const input = document.createElement("input");
          Object.assign(input, { type: "radio", name: `${kind}-g${gi}`, value, id });
          const label = document.createElement("label");
          label.htmlFor = id;
          label.textContent = text;
          const row = document.createElement("div");
          row.className = "check";
          row.append(input, label);
          fs.append(row);
        }
        box.append(fs);
      });
      if (singles.length) {
        const fs = document.createElement("fieldset");
        fs.className = "group";
        const legend = document.createElement("legend");
        legend.textContent = groups.length ? "and" : "attributes";
        fs.append(legend);
        for (const a of singles) {
          const id = `${kind}-a${names.indexOf(a)}`;
          const input = document.createElement("input");
          Object.assign(input, { type: "checkbox", value: a, id });
          input.dataset.attribute = a;
          const label = document.createElement("label");
          label.htmlFor = id;
          label.textContent = pretty(a);
          const row = document.createElement("div");
          row.className = "check";
          row.append(input, label);
          fs.append(row);
        }
        box.append(fs);
      }
    }
    setAttributes("source", defaultSource(m));
    setAttributes("target", defaultSource(m));
  }

  /** For an upload: the first member of each group, every other attribute off. */
  function defaultSource(m) {
    const { names, groups } = attributeLayout(m);
    const values = Object.fromEntries(names.map((a) => [a, 0]));
    for (const g of groups) values[g[0]] = 1;
    return values;
  }

  function readAttributes(kind) {
    const m = state.model;
    const { names, groups, singles } = attributeLayout(m);
    const values = Object.fromEntries(names.map((a) => [a, 0]));
    groups.forEach((group, gi) => {
      const checked = document.querySelector(`input[name="${kind}-g${gi}"]:checked`);
      if (checked && checked.value) values[checked.value] = 1;
    });
    for (const a of singles) values[a] = $(`${kind}-a${names.indexOf(a)}`).checked ? 1 : 0;
    return values;
  }

  function setAttributes(kind, values) {
    const { names, groups, singles } = attributeLayout(state.model);
    groups.forEach((group, gi) => {
      const on = group.find((a) => Number(values[a] || 0) >= 0.5);
      const id = `${kind}-g${gi}-${on ? names.indexOf(on) : "none"}`;
      $(id).checked = true;
    });
    for (const a of singles) $(`${kind}-a${names.indexOf(a)}`).checked = Number(values[a] || 0) >= 0.5;
  }

  function describeChange(source, target) {
    const changes = Object.keys(target).filter((a) => source[a] !== target[a]);
    if (!changes.length) return "no attribute changed";
    const on = changes.filter((a) => target[a] >= 0.5).map(pretty);
    const off = changes.filter((a) => target[a] < 0.5).map(pretty);
    return [on.length ? `${on.join(", ")} on` : "", off.length ? `${off.join(", ")} off` : ""].filter(Boolean).join("; ");
  }

  async function loadExamples() {
    if (state.examples) return renderExamples();
    try {
      const r = await fetch("/static/examples/index.json");
      if (!r.ok) throw new Error(`${r.status}`);
      state.examples = await r.json();
    } catch (err) {
      state.examples = { examples: [] };
    }
    renderExamples();
  }

  function renderExamples() {
    const box = $("examples");
    const list = (state.examples && state.examples.examples) || [];
    if (box.childElementCount !== list.length) {
      box.replaceChildren();
      list.forEach((ex, i) => {
        const input = document.createElement("input");
        Object.assign(input, { type: "radio", name: "example", value: String(i), id: `example-${i}`, className: "visually-hidden" });
        const label = document.createElement("label");
        label.htmlFor = input.id;
        label.className = "example";
        label.title = ex.label;
        const img = document.createElement("img");
        img.src = `/static/examples/${encodeURIComponent(ex.file)}`;
        img.alt = `Example: ${ex.label}`;
        label.append(img);
        input.addEventListener("change", () => { if (input.checked) useExample(i); });
        box.append(input, label);
      });
    }
    const m = state.model;
    const names = (m && m.attributes) || [];
    const labelled = list.some((ex) => Object.keys(ex.attributes || {}).some((a) => names.includes(a)));
    $("examples-note").textContent = !list.length ? "" : labelled
      ? `Or pick an example (held-out ${state.examples.dataset || ""} images, Twemoji CC-BY 4.0).`
      : `Or pick an example. They are labelled for ${state.examples.dataset || "another dataset"}, not for this model's attributes: set what the input shows yourself.`;
  }

  async function useExample(i) {
    const ex = state.examples.examples[i];
    try {
      const r = await fetch(`/static/examples/${encodeURIComponent(ex.file)}`);
      if (!r.ok) throw new ApiError(r.status, `example ${ex.file} could not be loaded`);
      const blob = await r.blob();
      const names = state.model.attributes || [];
      const known = Object.keys(ex.attributes || {}).some((a) => names.includes(a));
      setInput(blob, ex.file, `Example: ${ex.label}`, known ? ex.attributes : defaultSource(state.model));
      $("source-box").open = !known;
    } catch (err) {
      showError(err);
    }
  }

  function useUpload(file) {
    if (!file) return;
    document.querySelectorAll('input[name="example"]').forEach((r) => { r.checked = false; });
    setInput(file, file.name || "upload.png", `Your image ${file.name || ""}`.trim(), defaultSource(state.model));
    $("source-box").open = true;
  }

  function setInput(blob, name, label, source) {
    if (state.input && state.input.url) URL.revokeObjectURL(state.input.url);
    const url = URL.createObjectURL(blob);
    state.input = { blob, name, url, label };
    const img = $("edit-input");
    img.src = url;
    img.alt = label;
    img.hidden = false;
    $("edit-input-empty").hidden = true;
    const values = Object.fromEntries((state.model.attributes || []).map((a) => [a, Number((source || {})[a] || 0)]));
    setAttributes("source", values);
    setAttributes("target", values);
    $("edit-flips-row").hidden = true;
    runEdit();
  }

  function scheduleEdit() {
    clearTimeout(state.editTimer);
    state.editTimer = setTimeout(runEdit, 120);
  }

  function editForm(grid) {
    const source = readAttributes("source");
    const target = readAttributes("target");
    const form = new FormData();
    form.append("image", state.input.blob, state.input.name);
    form.append("attributes", JSON.stringify(target));
    form.append("source", JSON.stringify(source));
    form.append("strength", $("edit-strength").value);
    form.append("format", "json");
    if (grid) form.append("grid", "true");
    return { form, source, target };
  }

  async function runEdit() {
    const m = state.model;
    if (!m || !(m.operations || []).includes("edit")) return;
    if (!state.input) {
      showError(new Error("upload an image or pick an example first"));
      $("edit-upload").focus();
      return;
    }
    const { form, source, target } = editForm(false);
    const change = describeChange(source, target);
    clearError();
    busy("panel-edit", true);
    setStatus(`Editing: ${change}\u2026`);
    try {
      const out = await api(`/${encodeURIComponent(m.name)}/edit`, { method: "POST", body: form }, "edit");
      if (state.model !== m) return;
      const img = $("edit-output");
      img.src = png(out.images[0]);
      const strength = Number(out.strength);
      img.alt = `${state.input.label}, edited: ${change} (strength ${strength})`;
      img.hidden = false;
      img.dataset.change = change;
      $("edit-output-empty").hidden = true;
      $("edit-output-caption").textContent = `Edited: ${change}${strength !== 1 ? ` \u00b7 strength ${strength}` : ""}`;
      setStatus(`Edited: ${change}.`);
    } catch (err) {
      if (err.name !== "AbortError") showError(err);
    } finally {
      busy("panel-edit", false);
    }
  }

  async function runFlips() {
    const m = state.model;
    if (!m || !state.input) {
      showError(new Error("upload an image or pick an example first"));
      return;
    }
    const { form } = editForm(true);
    clearError();
    setStatus("Flipping each attribute in turn\u2026");
    try {
      const out = await api(`/${encodeURIComponent(m.name)}/edit`, { method: "POST", body: form }, "flips");
      if (state.model !== m) return;
      const row = $("edit-flips-row");
      row.replaceChildren();
      out.images.forEach((b64, i) => {
        const fig = document.createElement("figure");
        const img = document.createElement("img");
        img.src = png(b64);
        const label = out.labels[i];
        const text = label === "input" ? "input" : pretty(label.replace(/=1$/, " on").replace(/=0$/, " off"));
        img.alt = label === "input" ? `${state.input.label}, as the model sees it` : `the input with ${text}`;
        const cap = document.createElement("figcaption");
        cap.textContent = text;
        fig.append(img, cap);
        row.append(fig);
      });
      row.hidden = false;
      setStatus(`${out.images.length - 1} single-attribute flips.`);
    } catch (err) {
      if (err.name !== "AbortError") showError(err);
    }
  }

  // ---- wiring ------------------------------------------------------------------------------

  function wire() {
    $("api-key").value = state.key;
    $("key-form").addEventListener("submit", (event) => {
      event.preventDefault();
      state.key = $("api-key").value.trim();
      if (state.key) sessionStorage.setItem(KEY_STORAGE, state.key);
      else sessionStorage.removeItem(KEY_STORAGE);
      loadModels();
    });
    $("model").addEventListener("change", () => chooseModel($("model").value));
    $("modes").addEventListener("keydown", onTabKey);
    for (const mode of MODES) $(`tab-${mode}`).addEventListener("click", () => selectMode(mode, false));

    document.querySelectorAll(".dice").forEach((button) => {
      button.addEventListener("click", () => {
        $(button.dataset.dice).value = randomSeed();
        if (button.dataset.dice === "sample-seed") runSample();
        else runInterpolate();
      });
    });

    // sample: Enter or the button runs it; a new class or truncation runs it at once
    $("sample-form").addEventListener("submit", (event) => { event.preventDefault(); runSample(); });
    $("sample-class").addEventListener("change", runSample);
    $("sample-truncate").addEventListener("change", () => {
      $("sample-truncation").disabled = !$("sample-truncate").checked;
      runSample();
    });
    $("sample-truncation").addEventListener("input", () => { $("sample-truncation-out").textContent = $("sample-truncation").value; });
    $("sample-truncation").addEventListener("change", runSample);
    $("picked-use").addEventListener("click", () => {
      $("sample-seed").value = $("sample-picked").dataset.seed;
      $("sample-n").value = "1";
      runSample();
    });
    for (const side of ["from", "to"]) {
      $(`picked-${side}`).addEventListener("click", () => {
        $(`${side}-class`).value = $("sample-picked").dataset.class;
        $(`${side}-seed`).value = $("sample-picked").dataset.seed;
        selectMode("interpolate", true);
        setStatus(`Interpolation ${side === "from" ? "start" : "end"} set to ${pretty($("sample-picked").dataset.class)}, seed ${$("sample-picked").dataset.seed}.`);
      });
    }

    // interpolate
    $("interp-form").addEventListener("submit", (event) => { event.preventDefault(); runInterpolate(); });
    $("player-toggle").addEventListener("click", () => {
      if (!state.player) return;
      if (state.player.timer) pausePlayer();
      else {
        state.player.userPaused = false;
        startPlayer();
      }
    });
    $("player-scrub").addEventListener("input", () => { pausePlayer(); showFrame(Number($("player-scrub").value)); });
    $("player-fps").addEventListener("change", () => {
      if (state.player && state.player.timer) { stopPlayer(); startPlayer(); }
    });

    // edit: every change re-runs the edit
    $("edit-form").addEventListener("submit", (event) => { event.preventDefault(); runEdit(); });
    $("edit-flips").addEventListener("click", runFlips);
    $("edit-upload").addEventListener("change", () => useUpload($("edit-upload").files[0]));
    for (const id of ["source-attrs", "target-attrs"]) {
      $(id).addEventListener("change", () => { if (state.input) scheduleEdit(); });
    }
    $("edit-strength").addEventListener("input", () => { $("edit-strength-out").textContent = $("edit-strength").value; });
    $("edit-strength").addEventListener("change", () => { if (state.input) scheduleEdit(); });
    const drop = $("edit-input-figure");
    drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
    drop.addEventListener("dragleave", () => drop.classList.remove("over"));
    drop.addEventListener("drop", (event) => {
      event.preventDefault();
      drop.classList.remove("over");
      const file = event.dataTransfer && event.dataTransfer.files[0];
      if (file) useUpload(file);
    });
  }

  // Back, forward, or a link to #model=NAME&mode=MODE: follow it.
  window.addEventListener("hashchange", () => {
    const params = hashParams();
    const name = params.get("model");
    if (name && state.models.some((m) => m.name === name && m.status === "ready")) {
      $("model").value = name;
      chooseModel(name, params.get("mode"));
    }
  });

  wire();
  loadModels();
})();
