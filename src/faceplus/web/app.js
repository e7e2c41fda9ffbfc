// faceplus console: a plain client of the public Face++ v3 API (multipart POSTs to /facepp/v3/...).
"use strict";

const API = "/facepp/v3/";
const ATTRIBUTES = "gender,age,smiling,emotion,headpose,facequality,blur,eyestatus";
const COLORS = ["#ff3b30", "#34c759", "#0a84ff", "#ff9f0a", "#bf5af2", "#64d2ff", "#ffd60a", "#ff375f"];
const $ = (id) => document.getElementById(id);

// -- the API ------------------------------------------------------------------------------------
function credentials() {
  return { key: sessionStorage.getItem("faceplus.api_key"), secret: sessionStorage.getItem("faceplus.api_secret") };
}

/** POST form fields (strings or Files) to a Face++ route; resolve to the JSON body or throw its error_message. */
async function api(route, fields, creds = credentials()) {
  const form = new FormData();
  form.append("api_key", creds.key || "");
  form.append("api_secret", creds.secret || "");
  for (const [name, value] of Object.entries(fields || {})) {
    if (value !== undefined && value !== null) form.append(name, value);
  }
  let response;
  try {
    response = await fetch(API + route, { method: "POST", body: form });
  } catch (err) {
    throw new Error("the server cannot be reached (" + err.message + ")");
  }
  let body;
  try {
    body = await response.json();
  } catch (err) {
    throw new Error("HTTP " + response.status + " with a body that is not JSON");
  }
  if (!response.ok || body.error_message) throw new Error(body.error_message || "HTTP " + response.status);
  return body;
}

function busy(button, on) {
  if (button) button.disabled = on;
}

// -- sign in and pages ----------------------------------------------------------------------------
function signedIn() {
  return !!credentials().key;
}

function show(page) {
  if (!signedIn()) page = "signin";
  for (const section of document.querySelectorAll(".page")) section.hidden = section.id !== "page-" + page;
  $("nav").hidden = page === "signin";
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === page);
  $("who").textContent = signedIn() ? "key " + credentials().key.slice(0, 8) + "…" : "";
  if (page === "facesets") loadFacesets();
}

function route() {
  const page = (location.hash || "#detect").slice(1);
  show(["detect", "compare", "facesets"].includes(page) ? page : "detect");
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const creds = { key: $("api-key").value.trim(), secret: $("api-secret").value.trim() };
  $("signin-error").textContent = "";
  try {
    await api("faceset/getfacesets", {}, creds); // any authenticated call proves the pair
  } catch (err) {
    $("signin-error").textContent = "Sign in failed: " + err.message;
    return;
  }
  sessionStorage.setItem("faceplus.api_key", creds.key);
  sessionStorage.setItem("faceplus.api_secret", creds.secret);
  $("api-secret").value = "";
  if (!location.hash || location.hash === "#signin") location.hash = "#detect";
  route();
});

$("signout").addEventListener("click", () => {
  sessionStorage.removeItem("faceplus.api_key");
  sessionStorage.removeItem("faceplus.api_secret");
  show("signin");
});

window.addEventListener("hashchange", route);

// -- drag and drop ----------------------------------------------------------------------------------
function droppable(zone, input, onFile) {
  zone.addEventListener("dragover", (e) => {
    e.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    zone.classList.remove("over");
    const file = e.dataTransfer.files[0];
    if (file) onFile(file);
  });
  input.addEventListener("change", () => input.files[0] && onFile(input.files[0]));
}

function loadImage(file) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("the browser cannot show this image"));
    img.src = URL.createObjectURL(file);
  });
}

// -- detect -----------------------------------------------------------------------------------------
function describe(name, value) {
  if (value === null || value === undefined) return "";
  if (name === "emotion") {
    const [top, score] = Object.entries(value).sort((a, b) => b[1] - a[1])[0];
    return `${top} (${score.toFixed(1)}%)`;
  }
  if (name === "headpose") {
    return `yaw ${value.yaw_angle.toFixed(1)}°, pitch ${value.pitch_angle.toFixed(1)}°, roll ${value.roll_angle.toFixed(1)}°`;
  }
  if (name === "blur") {
    const v = (k) => (value[k] ? value[k].value.toFixed(1) : "?");
    return `blurness ${v("blurness")}, motion ${v("motionblur")}, gaussian ${v("gaussianblur")} (blurry above 50)`;
  }
  if (name === "smile") return `${value.value.toFixed(1)} (smiling above ${value.threshold})`;
  if (typeof value === "object" && "value" in value) {
    return typeof value.value === "number" ? String(Math.round(value.value * 10) / 10) : String(value.value);
  }
  if (name === "eyestatus") {
    const open = (eye) => eye.no_glass_eye_open.toFixed(0) + "% open";
    return `left ${open(value.left_eye_status)}, right ${open(value.right_eye_status)}`;
  }
  return JSON.stringify(value);
}

function drawFaces(img, faces) {
  const canvas = $("detect-canvas");
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const line = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 400));
  faces.forEach((face, i) => {
    const color = COLORS[i % COLORS.length];
    const r = face.face_rectangle;
    ctx.strokeStyle = color;
    ctx.lineWidth = line;
    ctx.strokeRect(r.left, r.top, r.width, r.height);
    ctx.fillStyle = color;
    ctx.font = `bold ${Math.max(12, line * 7)}px system-ui, sans-serif`;
    ctx.fillText(String(i + 1), r.left + line, Math.max(r.top - line * 2, line * 7));
    const points = Object.values(face.landmark || {});
    const dot = Math.max(1, line * 0.6);
    for (const p of points) {
      ctx.beginPath();
      ctx.arc(p.x, p.y, dot, 0, 2 * Math.PI);
      ctx.fill();
    }
  });
  canvas.dataset.faceCount = String(faces.length);
}

function listFaces(faces) {
  const list = $("detect-faces");
  list.innerHTML = "";
  faces.forEach((face, i) => {
    const li = document.createElement("li");
    li.style.setProperty("--c", COLORS[i % COLORS.length]);
    const r = face.face_rectangle;
    const points = Object.keys(face.landmark || {}).length;
    li.innerHTML = `<strong>Face ${i + 1}</strong> <small>${r.width}×${r.height} at (${r.left}, ${r.top})` +
      (points ? `, ${points} landmarks` : "") + "</small>";
    const dl = document.createElement("dl");
    for (const [name, value] of Object.entries(face.attributes || {})) {
      const dt = document.createElement("dt");
      dt.textContent = name;
      const dd = document.createElement("dd");
      dd.textContent = describe(name, value);
      dl.append(dt, dd);
    }
    if (!dl.children.length) dl.textContent = "not described (tick “describe every face”)";
    li.append(dl);
    list.append(li);
  });
}

async function detect(file) {
  $("detect-status").textContent = `Detecting faces in ${file.name}…`;
  $("detect-canvas").dataset.faceCount = "";
  $("detect-faces").innerHTML = "";
  try {
    const img = await loadImage(file);
    const body = await api("detect", {
      image_file: file,
      return_landmark: "2",
      return_attributes: ATTRIBUTES,
      calculate_all: $("detect-all").checked ? "1" : "0",
    });
    drawFaces(img, body.faces);
    listFaces(body.faces);
    const n = body.faces.length;
    $("detect-status").textContent = `${n} face${n === 1 ? "" : "s"} found in ${file.name} (${body.time_used} ms)`;
  } catch (err) {
    $("detect-status").textContent = "Detect failed: " + err.message;
  }
}

droppable($("detect-drop"), $("detect-file"), detect);

// -- compare ----------------------------------------------------------------------------------------
const comparePhotos = [null, null];
for (const n of [1, 2]) {
  droppable($("compare-drop" + n), $("compare-file" + n), (file) => {
    comparePhotos[n - 1] = file;
    $("compare-preview" + n).src = URL.createObjectURL(file);
  });
}

/** Plain words for a confidence against Face++'s FAR thresholds: the strictest one it clears, or the loosest it misses. */
function verdict(confidence, thresholds) {
  const levels = Object.entries(thresholds).sort((a, b) => b[1] - a[1]); // strictest (highest) first
  const c = confidence.toFixed(1);
  for (const [far, t] of levels) {
    if (confidence >= t) return { same: true, text: `same person (confidence ${c} >= ${far} threshold ${t.toFixed(1)})` };
  }
  const [far, t] = levels[levels.length - 1];
  return { same: false, text: `different people (confidence ${c} < ${far} threshold ${t.toFixed(1)})` };
}

$("compare-run").addEventListener("click", async () => {
  const out = $("compare-result");
  out.dataset.verdict = "";
  out.textContent = "";
  if (!comparePhotos[0] || !comparePhotos[1]) {
    $("compare-status").textContent = "Choose two photos first.";
    return;
  }
  busy($("compare-run"), true);
  $("compare-status").textContent = "Comparing the largest face of each photo…";
  try {
    const body = await api("compare", { image_file1: comparePhotos[0], image_file2: comparePhotos[1] });
    const v = verdict(body.confidence, body.thresholds);
    out.dataset.verdict = v.same ? "same" : "different";
    out.dataset.confidence = String(body.confidence);
    out.textContent = v.text;
    const small = document.createElement("small");
    small.textContent = "thresholds (false-accept rate → confidence): " +
      Object.entries(body.thresholds).map(([k, t]) => `${k}: ${t.toFixed(1)}`).join(", ");
    out.append(small);
    $("compare-status").textContent = `done in ${body.time_used} ms`;
  } catch (err) {
    $("compare-status").textContent = "Compare failed: " + err.message;
  } finally {
    busy($("compare-run"), false);
  }
});

// -- FaceSets ---------------------------------------------------------------------------------------
let current = null; // the selected FaceSet (getfacesets entry)

async function loadFacesets(select) {
  const list = $("faceset-list");
  try {
    const body = await api("faceset/getfacesets", {});
    list.innerHTML = "";
    if (!body.facesets.length) list.innerHTML = "<li><small>none yet: create one below</small></li>";
    for (const fs of body.facesets) {
      const li = document.createElement("li");
      li.dataset.token = fs.faceset_token;
      li.dataset.outerId = fs.outer_id;
      li.innerHTML = "<strong></strong><small></small>";
      li.querySelector("strong").textContent = fs.display_name || fs.outer_id || "(no name)";
      li.querySelector("small").textContent = `outer_id ${fs.outer_id || "—"} · ${fs.faceset_token}`;
      li.addEventListener("click", () => openFaceset(fs));
      if (current && current.faceset_token === fs.faceset_token) li.classList.add("active");
      list.append(li);
      if (select && fs.outer_id === select) openFaceset(fs);
    }
  } catch (err) {
    $("faceset-status").textContent = "Listing FaceSets failed: " + err.message;
  }
}

async function openFaceset(fs) {
  current = fs;
  for (const li of $("faceset-list").children) li.classList.toggle("active", li.dataset.token === fs.faceset_token);
  $("faceset-detail").hidden = false;
  $("faceset-title").textContent = fs.display_name || fs.outer_id;
  $("search-results").hidden = true;
  $("faceset-status").textContent = "";
  await refreshCount();
}

async function refreshCount() {
  const body = await api("faceset/getdetail", { faceset_token: current.faceset_token });
  $("faceset-count").textContent = `${body.face_count} face(s) · faceset_token ${body.faceset_token}`;
  $("faceset-count").dataset.faceCount = String(body.face_count);
}

$("faceset-create").addEventListener("submit", async (event) => {
  event.preventDefault();
  const outer = $("faceset-outer-id").value.trim();
  try {
    await api("faceset/create", { outer_id: outer, display_name: $("faceset-display-name").value.trim() || outer });
    $("faceset-status").textContent = `Created FaceSet ${outer}.`;
    $("faceset-outer-id").value = "";
    $("faceset-display-name").value = "";
    await loadFacesets(outer);
  } catch (err) {
    $("faceset-status").textContent = "Create failed: " + err.message;
  }
});

$("faceset-add").addEventListener("submit", async (event) => {
  event.preventDefault();
  const files = Array.from($("faceset-add-files").files);
  const userId = $("faceset-add-user").value.trim();
  const button = event.submitter;
  busy(button, true);
  const tokens = [];
  const problems = [];
  try {
    for (const [i, file] of files.entries()) {
      $("faceset-status").textContent = `Detecting ${i + 1}/${files.length}: ${file.name}…`;
      try {
        const body = await api("detect", { image_file: file });
        if (!body.faces.length) {
          problems.push(`${file.name}: no face`);
          continue;
        }
        const token = body.faces[0].face_token;
        if (userId) await api("face/setuserid", { face_token: token, user_id: userId });
        tokens.push(token);
      } catch (err) {
        problems.push(`${file.name}: ${err.message}`);
      }
    }
    for (let i = 0; i < tokens.length; i += 5) {
      await api("faceset/addface", { faceset_token: current.faceset_token, face_tokens: tokens.slice(i, i + 5).join(",") });
    }
    await refreshCount();
    $("faceset-status").textContent = `Added ${tokens.length} face(s).` + (problems.length ? " " + problems.join("; ") : "");
    $("faceset-add-files").value = "";
  } catch (err) {
    $("faceset-status").textContent = "Adding failed: " + err.message;
  } finally {
    busy(button, false);
  }
});

$("faceset-search").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = $("faceset-search-file").files[0];
  const button = event.submitter;
  busy(button, true);
  $("faceset-status").textContent = `Searching ${current.outer_id || current.faceset_token} with ${file.name}…`;
  const table = $("search-results");
  const rows = table.querySelector("tbody");
  rows.innerHTML = "";
  try {
    const body = await api("search", { image_file: file, faceset_token: current.faceset_token, return_result_count: "5" });
    for (const [i, hit] of (body.results || []).entries()) {
      const v = verdict(hit.confidence, body.thresholds);
      const tr = document.createElement("tr");
      tr.dataset.userId = hit.user_id || "";
      tr.dataset.same = v.same ? "1" : "0";
      for (const text of [String(i + 1), hit.face_token, hit.user_id || "—", hit.confidence.toFixed(2), v.text]) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      rows.append(tr);
    }
    table.hidden = false;
    const n = (body.results || []).length;
    $("faceset-status").textContent = n ? `${n} closest face(s):` : "No face found in the photo.";
  } catch (err) {
    $("faceset-status").textContent = "Search failed: " + err.message;
  } finally {
    busy(button, false);
  }
});

route();
