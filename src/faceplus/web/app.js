// faceplus console: a plain client of the public Face++ v3 API (multipart POSTs to /facepp/v3/...), FaceAlbum
// (/imagepp/v1/facealbum/...) and two console calls (/console/v1/thumbnail, /console/v1/limits).
"use strict";

const FACEPP = "/facepp/v3/";
const ALBUM = "/imagepp/v1/facealbum/";
const CONSOLE = "/console/v1/";
const ATTRIBUTES = "gender,age,smiling,emotion,headpose,facequality,blur,eyestatus";
const COLORS = ["#ff3b30", "#34c759", "#0a84ff", "#ff9f0a", "#bf5af2", "#64d2ff", "#ffd60a", "#ff375f"];
const PAGES = ["detect", "compare", "facesets", "people", "keys"];
/** The verdict rule: the false-accept rate whose threshold a confidence must reach (the CLI's and docs' default). */
const DEFAULT_FAR = "1e-4";
const FAR_WORDS = { "1e-3": "1 in 1,000", "1e-4": "1 in 10,000", "1e-5": "1 in 100,000" };
const $ = (id) => document.getElementById(id);

// -- the API ------------------------------------------------------------------------------------
function credentials() {
  return { key: sessionStorage.getItem("faceplus.api_key"), secret: sessionStorage.getItem("faceplus.api_secret") };
}

/** An API refusal: ``code`` is Face++'s error_message, ``message`` says it in words. */
class ApiFailure extends Error {
  constructor(code, status) {
    super(explain(code, status));
    this.code = code;
    this.status = status;
  }
}

async function post(url, fields, creds = credentials()) {
  const form = new FormData();
  form.append("api_key", creds.key || "");
  form.append("api_secret", creds.secret || "");
  for (const [name, value] of Object.entries(fields || {})) {
    if (value === undefined || value === null) continue;
    if (value instanceof Blob) form.append(name, value, value.name || "photo.jpg");
    else form.append(name, value);
  }
  try {
    return await fetch(url, { method: "POST", body: form });
  } catch (err) {
    throw new Error("The server cannot be reached. Check that faceplus is running, then try again.");
  }
}

/** POST form fields (strings or Blobs) to an API route; resolve to the JSON body or throw an ApiFailure. */
async function api(route, fields, creds, base = FACEPP) {
  const response = await post(base + route, fields, creds);
  let body;
  try {
    body = await response.json();
  } catch (err) {
    throw new ApiFailure(response.status === 413 ? "REQUEST_ENTITY_TOO_LARGE" : "HTTP " + response.status, response.status);
  }
  if (!response.ok || body.error_message) throw new ApiFailure(body.error_message || "HTTP " + response.status, response.status);
  Object.defineProperty(body, "leftOut", { value: (suffix) => leftOutOf(response, suffix) });
  return body;
}

/** What the server left out of a photo (faceplus headers beside Face++'s body): {count, side} or null. */
function leftOutOf(response, suffix = "") {
  const end = suffix ? "-" + suffix : "";
  const count = response.headers.get("X-Faceplus-Faces-Left-Out" + end);
  const side = response.headers.get("X-Faceplus-Min-Face" + end);
  return count === null || side === null ? null : { count: Number(count), side: Number(side) };
}

const album = (route, fields) => api(route, fields, undefined, ALBUM);

// -- the server's limits, and errors in words ---------------------------------------------------------
let limits = { image_max_bytes: 2 * 1024 * 1024, image_max_side: 4096, image_min_side: 48, detect_min_face: 48,
  detect_min_face_divisor: 48, max_body_bytes: 0 };

async function loadLimits() {
  try {
    limits = { ...limits, ...(await api("limits", {}, undefined, CONSOLE)) };
  } catch (err) {
    // an older server: Face++'s documented limits above
  }
}

const megabytes = (bytes) => (bytes / 1024 / 1024).toFixed(1).replace(/\.0$/, "") + " MB";

/** Why a face may be missing: the faces the server left out of this photo as too small (``left``, from the
 * reply's headers), else the smallest face this server reports in a photo of this size. */
function smallestFace(img, left) {
  const divisor = limits.detect_min_face_divisor;
  const short = img ? Math.min(img.naturalWidth, img.naturalHeight) : 0;
  const side = left ? left.side : Math.max(limits.detect_min_face || 0, divisor && short ? Math.floor(short / divisor) : 0);
  const rule = [limits.detect_min_face ? `${limits.detect_min_face} px` : "", divisor ? `1/${divisor} of the photo's shorter side` : ""];
  const why = `this server's smallest reported face: ${rule.filter(Boolean).join(" and ")}, set by the operator with ` +
    `FACEPLUS_DETECT_MIN_FACE` + (limits.detect_min_face === 48 ? ", as Face++" : "; Face++ leaves out faces under 48 px");
  if (left && left.count > 0) {
    const n = left.count;
    return `${n} face${n === 1 ? "" : "s"} smaller than ${side} pixels ${n === 1 ? "was" : "were"} left out (${why}).`;
  }
  if (side > 0) return `Faces smaller than ${side} pixels in this photo are left out (${why}).`;
  return divisor ? `Faces smaller than 1/${divisor} of the photo's shorter side are left out.` : "";
}

/** A Face++ error_message in plain words: what went wrong, the limit, and what to do. */
function explain(code, status) {
  const [name, detail] = String(code).split(/:\s*/, 2);
  const words = {
    AUTHENTICATION_ERROR: "The API key or secret is wrong, or the key was revoked. Check both and sign in again.",
    MISSING_ARGUMENTS: `Something required was not sent (${detail}). Fill it in and try again.`,
    BAD_ARGUMENTS: `The server did not accept the value of ${detail}. Check it and try again.`,
    IMAGE_FILE_TOO_LARGE: `The photo is larger than this server accepts (at most ${megabytes(limits.image_max_bytes)}). Save it smaller (a JPEG of at most ${limits.image_max_side} pixels a side) and try again.`,
    INVALID_IMAGE_SIZE: `The photo must be between ${limits.image_min_side} and ${limits.image_max_side} pixels on each side. Choose a larger photo, or a smaller one.`,
    IMAGE_ERROR_UNSUPPORTED_FORMAT: "This file is not a photo the server can read. Choose a JPEG, PNG, BMP or WebP photo.",
    REQUEST_ENTITY_TOO_LARGE: "The upload is larger than this server accepts. Send fewer or smaller photos at once.",
    CONCURRENCY_LIMIT_EXCEEDED: "The server is busy, or this key made too many calls or failed sign-ins just now. Wait a minute and try again.",
    TASK_QUEUE_IS_FULL: "The server has too much queued work. Wait a minute and try again.",
    DATABASE_UNAVAILABLE: "The server's database cannot be reached right now; nothing was stored. Try again in a few seconds.",
    INTERNAL_ERROR: "The server failed unexpectedly. Try again; if it keeps failing, tell the operator (the server's log says why).",
    FACESET_EXIST: "You already have a FaceSet with this outer_id. Choose another outer_id.",
    FACESET_QUOTA_EXCEEDED: "This key has as many FaceSets as the server allows. Delete one first.",
    FACESET_NOT_EMPTY: "This FaceSet still has faces.",
    EMPTY_FACESET: "This FaceSet has no faces yet. Add photos first.",
    INVALID_FACESET_TOKEN: "This FaceSet no longer exists (deleted elsewhere?). Reload the list.",
    INVALID_OUTER_ID: "This FaceSet no longer exists (deleted elsewhere?). Reload the list.",
    INVALID_FACE_TOKEN: "That face is no longer stored (a face not in a FaceSet is forgotten 72 hours after detect).",
    INVALID_FACEALBUM_TOKEN: "This album no longer exists (deleted elsewhere?). Reload the list.",
    FACEALBUM_QUOTA_EXCEEDED: "The album holds as many faces as the server allows. Remove some first.",
    INVALID_GROUP_ID: "That person no longer exists in the album. Reload the album.",
    THUMBNAIL_NOT_KEPT: "No picture of this face was kept.",
    API_NOT_FOUND: "This server does not offer that call (an older faceplus?).",
    OPERATOR_DISABLED: "Key management over HTTP is off on this server. The operator turns it on with: faceplus operator-secret.",
    OPERATOR_SECRET_INVALID: "That is not the operator secret. The operator makes a new one with: faceplus operator-secret.",
    INVALID_API_KEY: "There is no live key of that name (already revoked?).",
  };
  const text = words[name] || `The server refused the request.`;
  return `${text} (${code}${status ? ", HTTP " + status : ""})`;
}

function busy(button, on) {
  if (button) button.disabled = on;
}

// -- photos: shrunk in the browser to what the server takes ----------------------------------------
function loadImage(blob) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error("This file is not a photo the browser can open. Choose a JPEG or PNG photo."));
    img.src = URL.createObjectURL(blob);
  });
}

function toBlob(canvas, quality) {
  return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", quality));
}

/** The photo as the server will see it: the file itself when it fits the server's limits, else a JPEG re-drawn
 *  on a canvas, scaled down until it does. Resolves to {blob, img, note}; ``img`` is what was sent. */
async function preparePhoto(file) {
  const img = await loadImage(file);
  const w = img.naturalWidth, h = img.naturalHeight;
  const maxBytes = Math.floor(limits.image_max_bytes * 0.95);
  const fits = file.size <= maxBytes && Math.max(w, h) <= limits.image_max_side && /^image\/(jpeg|png)$/.test(file.type);
  if (fits) return { blob: file, img, note: "" };
  let scale = Math.min(1, limits.image_max_side / Math.max(w, h));
  for (let attempt = 0; attempt < 12; attempt++) {
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(w * scale));
    canvas.height = Math.max(1, Math.round(h * scale));
    canvas.getContext("2d").drawImage(img, 0, 0, canvas.width, canvas.height);
    const blob = await toBlob(canvas, 0.9);
    if (blob && blob.size <= maxBytes) {
      blob.name = file.name.replace(/\.[^.]*$/, "") + ".jpg";
      const sent = await loadImage(blob);
      const note = `${file.name} (${w}×${h}, ${megabytes(file.size)}) was shrunk here to ${canvas.width}×${canvas.height}, ` +
        `${megabytes(blob.size)}, to fit this server's limit of ${megabytes(limits.image_max_bytes)} and ${limits.image_max_side} pixels a side.`;
      return { blob, img: sent, note };
    }
    scale *= 0.8;
  }
  throw new Error(`${file.name} could not be shrunk below ${megabytes(limits.image_max_bytes)}.`);
}

// -- the verdict rule (one for the whole console) ---------------------------------------------------
function chosenFar() {
  return localStorage.getItem("faceplus.far") || DEFAULT_FAR;
}

function fillFarSelects() {
  for (const select of document.querySelectorAll(".far-select")) {
    select.innerHTML = "";
    for (const [far, words] of Object.entries(FAR_WORDS)) {
      const option = document.createElement("option");
      option.value = far;
      option.textContent = `${words} (${far})` + (far === DEFAULT_FAR ? ", default" : "");
      select.append(option);
    }
    select.value = chosenFar();
    select.addEventListener("change", () => {
      localStorage.setItem("faceplus.far", select.value);
      for (const other of document.querySelectorAll(".far-select")) other.value = select.value;
    });
  }
}

/** Same person when the confidence reaches the threshold of the chosen false-accept rate (as the CLI decides). */
function verdict(confidence, thresholds, far = chosenFar()) {
  const rate = far in thresholds ? far : Object.keys(thresholds).sort()[0];
  const t = thresholds[rate];
  const c = confidence.toFixed(1);
  const same = confidence >= t;
  const rule = `the ${rate} threshold ${t.toFixed(1)}`;
  return { same, far: rate, text: same ? `same person (confidence ${c} >= ${rule})` : `different people (confidence ${c} < ${rule})` };
}

// -- thumbnails of stored faces --------------------------------------------------------------------
const thumbnailUrls = new Map();
let thumbnailQueue = Promise.resolve();

/** An <img> of a stored face (from /console/v1/thumbnail), fetched a few at a time, cached for this page. */
function thumbnail(token, alt) {
  const img = document.createElement("img");
  img.className = "thumb";
  img.alt = alt || "face";
  img.width = 96;
  img.height = 96;
  img.dataset.token = token;
  const cached = thumbnailUrls.get(token);
  if (cached) {
    img.src = cached;
    img.dataset.loaded = "1";
    return img;
  }
  thumbnailQueue = thumbnailQueue.then(async () => {
    try {
      const response = await post(CONSOLE + "thumbnail", { face_token: token, size: "192" });
      if (!response.ok) throw new Error("HTTP " + response.status);
      const url = URL.createObjectURL(await response.blob());
      thumbnailUrls.set(token, url);
      img.src = url;
      img.dataset.loaded = "1";
    } catch (err) {
      img.dataset.loaded = "0";
      img.title = "no picture kept of this face";
      img.classList.add("missing");
    }
  });
  return img;
}

// -- sign in and pages ----------------------------------------------------------------------------
function signedIn() {
  return !!credentials().key;
}

function show(page) {
  if (!signedIn()) page = "signin";
  for (const section of document.querySelectorAll(".page")) section.hidden = section.id !== "page-" + page;
  $("nav").hidden = page === "signin";
  $("account").hidden = page === "signin";
  for (const a of document.querySelectorAll("#nav a")) a.classList.toggle("active", a.dataset.page === page);
  $("who").textContent = signedIn() ? "key " + credentials().key.slice(0, 6) + "…" : "";
  if (page === "facesets") loadFacesets();
  if (page === "people") loadAlbums();
  if (page === "keys" && sessionStorage.getItem("faceplus.operator_secret")) loadKeys();
}

function route() {
  const page = (location.hash || "#detect").slice(1);
  show(PAGES.includes(page) ? page : "detect");
}

$("signin-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const creds = { key: $("api-key").value.trim(), secret: $("api-secret").value.trim() };
  $("signin-error").textContent = "";
  try {
    await api("faceset/getfacesets", {}, creds); // any authenticated call proves the pair
  } catch (err) {
    $("signin-error").textContent = "Sign in failed. " + err.message;
    return;
  }
  sessionStorage.setItem("faceplus.api_key", creds.key);
  sessionStorage.setItem("faceplus.api_secret", creds.secret);
  $("api-secret").value = "";
  await loadLimits();
  if (!location.hash || location.hash === "#signin") location.hash = "#detect";
  route();
});

$("signout").addEventListener("click", () => {
  sessionStorage.removeItem("faceplus.api_key");
  sessionStorage.removeItem("faceplus.api_secret");
  sessionStorage.removeItem("faceplus.operator_secret");
  for (const url of thumbnailUrls.values()) URL.revokeObjectURL(url);
  thumbnailUrls.clear();
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

/** Draw the photo on a canvas with each face's box (and, optionally, its label and landmarks). */
function drawBoxes(canvas, img, faces, style) {
  canvas.width = img.naturalWidth;
  canvas.height = img.naturalHeight;
  const ctx = canvas.getContext("2d");
  ctx.drawImage(img, 0, 0);
  const line = Math.max(2, Math.round(Math.max(canvas.width, canvas.height) / 300));
  faces.forEach((face, i) => {
    const { color, label, width, points } = style(face, i);
    const r = face.face_rectangle;
    ctx.strokeStyle = color;
    ctx.lineWidth = line * width;
    ctx.strokeRect(r.left, r.top, r.width, r.height);
    ctx.fillStyle = color;
    if (label) {
      ctx.font = `bold ${Math.max(12, line * 7)}px system-ui, sans-serif`;
      ctx.fillText(label, r.left + line, Math.max(r.top - line * 2, line * 7));
    }
    // landmark dots only where the face is big enough for them not to hide it
    if (points && r.width >= 60) {
      const dot = Math.max(1, line * 0.5);
      for (const p of Object.values(face.landmark || {})) {
        ctx.beginPath();
        ctx.arc(p.x, p.y, dot, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
  });
  canvas.hidden = false;
}

function listFaces(faces) {
  const list = $("detect-faces");
  list.innerHTML = "";
  faces.forEach((face, i) => {
    const li = document.createElement("li");
    li.style.setProperty("--c", COLORS[i % COLORS.length]);
    const r = face.face_rectangle;
    const points = Object.keys(face.landmark || {}).length;
    const head = document.createElement("div");
    head.innerHTML = "<strong></strong> <small></small>";
    head.querySelector("strong").textContent = `Face ${i + 1}`;
    head.querySelector("small").textContent = `${r.width}×${r.height} at (${r.left}, ${r.top})` + (points ? `, ${points} landmarks` : "");
    li.append(head);
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
  $("detect-status").classList.remove("error");
  $("detect-note").textContent = "";
  $("detect-canvas").dataset.faceCount = "";
  $("detect-faces").innerHTML = "";
  $("detect-wrap").hidden = true;
  try {
    const photo = await preparePhoto(file);
    const body = await api("detect", {
      image_file: photo.blob,
      return_landmark: "2",
      return_attributes: ATTRIBUTES,
      calculate_all: $("detect-all").checked ? "1" : "0",
    });
    drawBoxes($("detect-canvas"), photo.img, body.faces, (face, i) => ({ color: COLORS[i % COLORS.length], label: String(i + 1), width: 1, points: true }));
    $("detect-wrap").hidden = false;
    $("detect-canvas").dataset.faceCount = String(body.faces.length);
    listFaces(body.faces);
    const n = body.faces.length;
    $("detect-status").textContent = n
      ? `${n} face${n === 1 ? "" : "s"} found in ${file.name} (${body.time_used} ms).`
      : `No face found in ${file.name}.`;
    $("detect-note").textContent = [photo.note, smallestFace(photo.img, body.leftOut())].filter(Boolean).join(" ");
  } catch (err) {
    $("detect-status").textContent = "Detect failed. " + err.message;
    $("detect-status").classList.add("error");
  }
}

droppable($("detect-drop"), $("detect-file"), detect);

// -- compare ----------------------------------------------------------------------------------------
const comparePhotos = [null, null];
for (const n of [1, 2]) {
  droppable($("compare-drop" + n), $("compare-file" + n), async (file) => {
    comparePhotos[n - 1] = null;
    $("compare-canvas" + n).dataset.file = "";
    $("compare-result").dataset.verdict = "";
    $("compare-result").textContent = "";
    try {
      const photo = await preparePhoto(file);
      comparePhotos[n - 1] = { ...photo, name: file.name };
      drawBoxes($("compare-canvas" + n), photo.img, [], () => ({}));
      $("compare-canvas" + n).dataset.compared = "";
      $("compare-canvas" + n).dataset.file = file.name;
      $("compare-status").textContent = photo.note;
    } catch (err) {
      $("compare-status").textContent = err.message;
    }
  });
}

/** Outline the compared (largest) face in green, the others in grey; record which on the canvas. */
function markCompared(n, faces) {
  const canvas = $("compare-canvas" + n);
  drawBoxes(canvas, comparePhotos[n - 1].img, faces, (face, i) =>
    i === 0 ? { color: "#20c040", label: "compared", width: 1.5 } : { color: "#a0a0a0", width: 0.7 });
  canvas.dataset.compared = faces.length ? JSON.stringify(faces[0].face_rectangle) : "none";
  canvas.dataset.faceCount = String(faces.length);
}

function faceFigure(token, caption) {
  const figure = document.createElement("figure");
  figure.append(thumbnail(token, caption));
  const figcaption = document.createElement("figcaption");
  figcaption.textContent = caption;
  figure.append(figcaption);
  return figure;
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
    const body = await api("compare", { image_file1: comparePhotos[0].blob, image_file2: comparePhotos[1].blob });
    markCompared(1, body.faces1 || []);
    markCompared(2, body.faces2 || []);
    if (body.confidence === undefined) {
      const missing = [body.faces1, body.faces2].map((f, i) => (f && f.length ? null : i ? "the second photo" : "the first photo")).filter(Boolean);
      out.dataset.verdict = "no-face";
      const which = body.faces1 && body.faces1.length ? 2 : 1;
      out.textContent = `No face found in ${missing.join(" or ")}: nothing to compare. ${smallestFace(comparePhotos[which - 1].img, body.leftOut(String(which)))}`;
      $("compare-status").textContent = "";
      return;
    }
    const v = verdict(body.confidence, body.thresholds);
    out.dataset.verdict = v.same ? "same" : "different";
    out.dataset.confidence = String(body.confidence);
    out.dataset.far = v.far;
    out.dataset.threshold = String(body.thresholds[v.far]);
    const faces = document.createElement("div");
    faces.className = "compared-faces";
    faces.append(faceFigure(body.faces1[0].face_token, "first photo"), faceFigure(body.faces2[0].face_token, "second photo"));
    const words = document.createElement("p");
    words.className = "verdict-text";
    words.textContent = v.text;
    const small = document.createElement("small");
    small.textContent = "thresholds (false-accept rate → confidence): " +
      Object.entries(body.thresholds).map(([k, t]) => `${k}: ${t.toFixed(1)}`).join(", ") +
      `. Judged at ${v.far} (${FAR_WORDS[v.far] || v.far} pairs of different people would pass); change it above.`;
    out.append(faces, words, small);
    $("compare-status").textContent = `Done in ${body.time_used} ms.`;
  } catch (err) {
    $("compare-status").textContent = "Compare failed. " + err.message;
  } finally {
    busy($("compare-run"), false);
  }
});

// -- FaceSets ---------------------------------------------------------------------------------------
let current = null; // the selected FaceSet (getfacesets entry)
let facesetListStart = 1;
const facesetListHistory = [];
let facesStart = 1;
const facesHistory = [];

function facesetStatus(text, error) {
  $("faceset-status").textContent = text;
  $("faceset-status").classList.toggle("error", !!error);
}

async function loadFacesets(select) {
  const list = $("faceset-list");
  try {
    const body = await api("faceset/getfacesets", { start: String(facesetListStart) });
    list.innerHTML = "";
    if (!body.facesets.length) list.innerHTML = "<li class='empty'><small>none yet: create one below</small></li>";
    for (const fs of body.facesets) {
      const li = document.createElement("li");
      li.dataset.token = fs.faceset_token;
      li.dataset.outerId = fs.outer_id;
      li.innerHTML = "<strong></strong><small></small>";
      li.querySelector("strong").textContent = fs.display_name || fs.outer_id || "(no name)";
      li.querySelector("small").textContent = `outer_id ${fs.outer_id || "—"}`;
      li.tabIndex = 0;
      li.addEventListener("click", () => openFaceset(fs));
      if (current && current.faceset_token === fs.faceset_token) li.classList.add("active");
      list.append(li);
      if (select && fs.outer_id === select) openFaceset(fs);
    }
    $("faceset-list-next").hidden = !body.next;
    $("faceset-list-next").dataset.next = body.next || "";
    $("faceset-list-prev").hidden = !facesetListHistory.length;
  } catch (err) {
    facesetStatus("Listing FaceSets failed. " + err.message, true);
  }
}

$("faceset-list-next").addEventListener("click", () => {
  facesetListHistory.push(facesetListStart);
  facesetListStart = Number($("faceset-list-next").dataset.next);
  loadFacesets();
});
$("faceset-list-prev").addEventListener("click", () => {
  facesetListStart = facesetListHistory.pop() || 1;
  loadFacesets();
});

async function openFaceset(fs) {
  current = fs;
  for (const li of $("faceset-list").children) li.classList.toggle("active", li.dataset.token === fs.faceset_token);
  $("faceset-detail").hidden = false;
  $("faceset-title").textContent = fs.display_name || fs.outer_id;
  $("search-box").hidden = true;
  $("faceset-delete-ask").hidden = true;
  $("faceset-delete").hidden = false;
  facesetStatus("");
  facesStart = 1;
  facesHistory.length = 0;
  await loadFaces();
}

/** One page of the FaceSet's faces: thumbnail, user_id, and a Remove button each. */
async function loadFaces() {
  const grid = $("faceset-faces");
  try {
    const body = await api("faceset/getdetail", { faceset_token: current.faceset_token, start: String(facesStart) });
    $("faceset-count").textContent = `${body.face_count} face${body.face_count === 1 ? "" : "s"}`;
    $("faceset-count").dataset.faceCount = String(body.face_count);
    grid.innerHTML = "";
    grid.dataset.faceCount = String(body.face_count);
    const details = await Promise.all(body.face_tokens.map((t) => api("face/getdetail", { face_token: t }).catch(() => ({}))));
    body.face_tokens.forEach((token, i) => {
      const li = document.createElement("li");
      li.dataset.token = token;
      li.dataset.userId = details[i].user_id || "";
      li.append(thumbnail(token, details[i].user_id || "face"));
      const name = document.createElement("span");
      name.className = "user";
      name.textContent = details[i].user_id || "no user_id";
      name.title = "face_token " + token;
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "plain small remove";
      remove.textContent = "Remove";
      remove.addEventListener("click", () => removeFace(token, remove));
      li.append(name, remove);
      grid.append(li);
    });
    if (!body.face_tokens.length) grid.innerHTML = "<li class='empty'>No faces yet: add photos above.</li>";
    const shown = body.face_tokens.length;
    $("faceset-faces-range").textContent = shown ? `faces ${facesStart}–${facesStart + shown - 1} of ${body.face_count}` : "";
    $("faceset-faces-next").hidden = !body.next;
    $("faceset-faces-next").dataset.next = body.next || "";
    $("faceset-faces-prev").hidden = !facesHistory.length;
  } catch (err) {
    facesetStatus("Listing the faces failed. " + err.message, true);
  }
}

$("faceset-faces-next").addEventListener("click", () => {
  facesHistory.push(facesStart);
  facesStart = Number($("faceset-faces-next").dataset.next);
  loadFaces();
});
$("faceset-faces-prev").addEventListener("click", () => {
  facesStart = facesHistory.pop() || 1;
  loadFaces();
});

async function removeFace(token, button) {
  busy(button, true);
  try {
    await api("faceset/removeface", { faceset_token: current.faceset_token, face_tokens: token });
    await loadFaces();
    facesetStatus("Removed the face from the FaceSet.");
  } catch (err) {
    facesetStatus("Removing the face failed. " + err.message, true);
    busy(button, false);
  }
}

$("faceset-delete").addEventListener("click", () => {
  $("faceset-delete").hidden = true;
  $("faceset-delete-ask").hidden = false;
});
$("faceset-delete-cancel").addEventListener("click", () => {
  $("faceset-delete").hidden = false;
  $("faceset-delete-ask").hidden = true;
});
$("faceset-delete-confirm").addEventListener("click", async () => {
  const name = current.display_name || current.outer_id;
  try {
    await api("faceset/delete", { faceset_token: current.faceset_token, check_empty: "0" });
    current = null;
    $("faceset-detail").hidden = true;
    await loadFacesets();
    $("faceset-list").dataset.deleted = name;
  } catch (err) {
    facesetStatus("Deleting the FaceSet failed. " + err.message, true);
  }
});

$("faceset-create").addEventListener("submit", async (event) => {
  event.preventDefault();
  const outer = $("faceset-outer-id").value.trim();
  try {
    await api("faceset/create", { outer_id: outer, display_name: $("faceset-display-name").value.trim() || outer });
    $("faceset-create-status").textContent = `Created FaceSet ${outer}.`;
    $("faceset-outer-id").value = "";
    $("faceset-display-name").value = "";
    await loadFacesets(outer);
  } catch (err) {
    $("faceset-create-status").textContent = "Creating the FaceSet failed. " + err.message;
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
  const notes = [];
  try {
    for (const [i, file] of files.entries()) {
      facesetStatus(`Finding the face in ${i + 1} of ${files.length}: ${file.name}…`);
      try {
        const photo = await preparePhoto(file);
        if (photo.note) notes.push(photo.note);
        const body = await api("detect", { image_file: photo.blob });
        if (!body.faces.length) {
          problems.push(`${file.name}: no face found. ${smallestFace(photo.img)}`);
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
    await loadFaces();
    facesetStatus(`Added ${tokens.length} face${tokens.length === 1 ? "" : "s"}.` + (problems.length ? " Left out: " + problems.join(" ") : "") +
      (notes.length ? " " + notes.join(" ") : ""), problems.length > 0);
    $("faceset-add-files").value = "";
  } catch (err) {
    facesetStatus("Adding faces failed. " + err.message, true);
  } finally {
    busy(button, false);
  }
});

$("faceset-search").addEventListener("submit", async (event) => {
  event.preventDefault();
  const file = $("faceset-search-file").files[0];
  const button = event.submitter;
  busy(button, true);
  facesetStatus(`Searching ${current.display_name || current.outer_id} with ${file.name}…`);
  const list = $("search-results");
  list.innerHTML = "";
  $("search-box").hidden = true;
  try {
    const photo = await preparePhoto(file);
    const body = await api("search", { image_file: photo.blob, faceset_token: current.faceset_token, return_result_count: "5" });
    const hits = body.results || [];
    for (const hit of hits) {
      const v = verdict(hit.confidence, body.thresholds);
      const li = document.createElement("li");
      li.dataset.userId = hit.user_id || "";
      li.dataset.token = hit.face_token;
      li.dataset.same = v.same ? "1" : "0";
      li.className = v.same ? "same" : "different";
      li.append(thumbnail(hit.face_token, hit.user_id || "face"));
      const text = document.createElement("div");
      text.innerHTML = "<strong></strong><span></span><small></small>";
      text.querySelector("strong").textContent = hit.user_id || "no user_id";
      text.querySelector("span").textContent = v.text;
      text.querySelector("small").textContent = "face_token " + hit.face_token;
      li.append(text);
      list.append(li);
    }
    $("search-box").hidden = false;
    facesetStatus(hits.length ? `The ${hits.length} closest face${hits.length === 1 ? "" : "s"}, judged at ${chosenFar()}. ${photo.note}`
      : `No face found in ${file.name}. ${smallestFace(photo.img)}`);
  } catch (err) {
    facesetStatus("Search failed. " + err.message, true);
  } finally {
    busy(button, false);
  }
});

// -- People (FaceAlbum) -------------------------------------------------------------------------------
// The server keeps no pixels of album photos, so the console keeps a small picture of each face it added, in
// this browser (IndexedDB), and the names people are given (localStorage).
let albumToken = null;
let albumFaces = [];
const selected = new Set();

function pictureStore() {
  return new Promise((resolve, reject) => {
    const open = indexedDB.open("faceplus-console", 1);
    open.onupgradeneeded = () => open.result.createObjectStore("faces");
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
}

async function savePictures(pictures) {
  const db = await pictureStore();
  await new Promise((resolve, reject) => {
    const tx = db.transaction("faces", "readwrite");
    for (const [token, url] of pictures) tx.objectStore("faces").put(url, token);
    tx.oncomplete = resolve;
    tx.onerror = () => reject(tx.error);
  });
}

async function loadPictures(tokens) {
  const db = await pictureStore();
  const tx = db.transaction("faces", "readonly");
  const store = tx.objectStore("faces");
  const values = await Promise.all(tokens.map((t) => new Promise((resolve) => {
    const get = store.get(t);
    get.onsuccess = () => resolve(get.result || null);
    get.onerror = () => resolve(null);
  })));
  return new Map(tokens.map((t, i) => [t, values[i]]));
}

/** A square picture of a face box of a photo, as a JPEG data URL (about 4 KB). */
function facePicture(img, r) {
  const side = Math.max(r.width, r.height) * 1.5;
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 96;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#888";
  ctx.fillRect(0, 0, 96, 96);
  ctx.drawImage(img, r.left + r.width / 2 - side / 2, r.top + r.height / 2 - side / 2, side, side, 0, 0, 96, 96);
  return canvas.toDataURL("image/jpeg", 0.85);
}

function names() {
  return JSON.parse(localStorage.getItem("faceplus.people." + albumToken) || "{}");
}

function saveName(groupId, name) {
  const all = names();
  if (name) all[groupId] = name;
  else delete all[groupId];
  localStorage.setItem("faceplus.people." + albumToken, JSON.stringify(all));
}

function personName(groupId) {
  if (groupId === "-1") return "Not grouped yet";
  if (groupId === "0") return "Like no one else";
  return names()[groupId] || `Person ${groupId}`;
}

function albumStatus(text, error) {
  $("album-status").textContent = text;
  $("album-status").classList.toggle("error", !!error);
}

async function loadAlbums(select) {
  const list = $("album-list");
  try {
    const albums = [];
    let start = 1;
    for (;;) {
      const body = await album("getfacealbums", { start: String(start) });
      albums.push(...body.facealbums);
      if (!body.next) break;
      start = Number(body.next);
    }
    list.innerHTML = "";
    if (!albums.length) list.innerHTML = "<li class='empty'><small>none yet: make one below</small></li>";
    albums.forEach((a, i) => {
      const li = document.createElement("li");
      li.dataset.token = a.facealbum_token;
      li.innerHTML = "<strong></strong><small></small>";
      li.querySelector("strong").textContent = `Album ${i + 1}`;
      li.querySelector("small").textContent = a.facealbum_token.slice(0, 12) + "…";
      li.tabIndex = 0;
      li.addEventListener("click", () => openAlbum(a.facealbum_token, `Album ${i + 1}`));
      li.classList.toggle("active", a.facealbum_token === albumToken);
      list.append(li);
      if (select === a.facealbum_token) openAlbum(a.facealbum_token, `Album ${i + 1}`);
    });
  } catch (err) {
    albumStatus("Listing albums failed. " + err.message, true);
  }
}

$("album-create").addEventListener("click", async () => {
  try {
    const body = await album("createalbum", {});
    await loadAlbums(body.facealbum_token);
  } catch (err) {
    albumStatus("Making an album failed. " + err.message, true);
  }
});

async function openAlbum(token, title) {
  albumToken = token;
  selected.clear();
  for (const li of $("album-list").children) li.classList.toggle("active", li.dataset.token === token);
  $("album-detail").hidden = false;
  $("album-title").textContent = title;
  albumStatus("");
  await loadPeople();
}

/** Every face of the album (all pages), then the groups drawn as people. */
async function loadPeople() {
  const faces = [];
  let start;
  for (;;) {
    const body = await album("getalbumdetail", { facealbum_token: albumToken, start_token: start });
    faces.push(...body.faces);
    if (!body.next_token) break;
    start = body.next_token;
  }
  albumFaces = faces;
  $("album-count").textContent = `${faces.length} face${faces.length === 1 ? "" : "s"}`;
  await drawPeople();
}

async function drawPeople() {
  const groups = new Map();
  for (const face of albumFaces) {
    if (!groups.has(face.group_id)) groups.set(face.group_id, []);
    groups.get(face.group_id).push(face);
  }
  const order = [...groups.keys()].sort((a, b) => {
    const rank = (g) => (g === "-1" ? 2 : g === "0" ? 1 : 0);
    return rank(a) - rank(b) || groups.get(b).length - groups.get(a).length || Number(a) - Number(b);
  });
  const pictures = await loadPictures(albumFaces.map((f) => f.face_token)).catch(() => new Map());
  const box = $("people-groups");
  box.innerHTML = "";
  const people = order.filter((g) => g !== "0" && g !== "-1");
  for (const groupId of order) {
    const card = document.createElement("section");
    card.className = "person card";
    card.dataset.groupId = groupId;
    const head = document.createElement("div");
    head.className = "person-head";
    if (groupId !== "0" && groupId !== "-1") {
      const name = document.createElement("input");
      name.className = "person-name";
      name.value = personName(groupId);
      name.setAttribute("aria-label", "name of this person");
      const rename = document.createElement("button");
      rename.type = "button";
      rename.className = "plain small rename";
      rename.textContent = "Rename";
      rename.addEventListener("click", async () => {
        saveName(groupId, name.value.trim());
        await drawPeople();
        albumStatus(`Renamed to ${personName(groupId)}.`);
      });
      name.addEventListener("keydown", (e) => e.key === "Enter" && rename.click());
      head.append(name, rename);
      const others = people.filter((g) => g !== groupId);
      if (others.length) {
        const into = document.createElement("select");
        into.className = "merge-target";
        for (const g of others) into.append(new Option(personName(g), g));
        const merge = document.createElement("button");
        merge.type = "button";
        merge.className = "plain small merge";
        merge.textContent = "Merge into";
        merge.addEventListener("click", () => mergePeople(groupId, into.value));
        head.append(merge, into);
      }
    } else {
      const title = document.createElement("strong");
      title.textContent = personName(groupId);
      head.append(title);
    }
    const count = document.createElement("span");
    count.className = "muted";
    count.textContent = `${groups.get(groupId).length} face${groups.get(groupId).length === 1 ? "" : "s"}`;
    head.append(count);
    const grid = document.createElement("ul");
    grid.className = "face-grid pick";
    for (const face of groups.get(groupId)) {
      const li = document.createElement("li");
      li.dataset.token = face.face_token;
      li.classList.toggle("selected", selected.has(face.face_token));
      const img = document.createElement("img");
      img.className = "thumb";
      img.width = img.height = 96;
      img.alt = personName(groupId);
      const picture = pictures.get(face.face_token);
      if (picture) img.src = picture;
      else {
        img.classList.add("missing");
        img.title = "added outside this browser: no picture kept here";
      }
      li.append(img);
      li.title = "click to select";
      li.addEventListener("click", () => {
        if (selected.has(face.face_token)) selected.delete(face.face_token);
        else selected.add(face.face_token);
        li.classList.toggle("selected", selected.has(face.face_token));
        updateToolbar(people);
      });
      grid.append(li);
    }
    card.append(head, grid);
    box.append(card);
  }
  box.dataset.people = String(people.length);
  updateToolbar(people);
}

function updateToolbar(people) {
  $("people-toolbar").hidden = selected.size === 0;
  $("people-selected").textContent = `${selected.size} face${selected.size === 1 ? "" : "s"} selected`;
  const target = $("people-move-target");
  const keep = target.value;
  target.innerHTML = "";
  for (const g of people) target.append(new Option(personName(g), g));
  target.append(new Option("nobody (not grouped)", "-1"));
  if ([...target.options].some((o) => o.value === keep)) target.value = keep;
}

/** updateface takes 1-10 tokens a call. */
async function moveFaces(tokens, group) {
  let created = null;
  for (let i = 0; i < tokens.length; i += 10) {
    const body = await album("updateface", { facealbum_token: albumToken, face_tokens: tokens.slice(i, i + 10).join(","),
      new_group_id: created || group });
    if (body.group_id) created = body.group_id;
    if (body.failure_detail && body.failure_detail.length) throw new Error(`${body.failure_detail.length} face(s) could not be moved.`);
  }
  return created || group;
}

async function mergePeople(from, into) {
  const tokens = albumFaces.filter((f) => f.group_id === from).map((f) => f.face_token);
  const fromName = personName(from), intoName = personName(into);
  try {
    await moveFaces(tokens, into);
    saveName(from, "");
    await loadPeople();
    albumStatus(`Merged ${fromName} into ${intoName}.`);
  } catch (err) {
    albumStatus("Merging failed. " + err.message, true);
  }
}

$("people-move").addEventListener("click", async () => {
  const target = $("people-move-target").value;
  try {
    await moveFaces([...selected], target);
    const moved = `Moved ${selected.size} face${selected.size === 1 ? "" : "s"} to ${personName(target)}.`;
    selected.clear();
    await loadPeople();
    albumStatus(moved);
  } catch (err) {
    albumStatus("Moving failed. " + err.message, true);
  }
});

$("people-split").addEventListener("click", async () => {
  try {
    const group = await moveFaces([...selected], "CreateNewGroup");
    const split = `Split ${selected.size} face${selected.size === 1 ? "" : "s"} into ${personName(group)}.`;
    selected.clear();
    await loadPeople();
    albumStatus(split);
  } catch (err) {
    albumStatus("Splitting failed. " + err.message, true);
  }
});

$("people-clear").addEventListener("click", () => {
  selected.clear();
  drawPeople();
});

async function waitForTask(query, taskId) {
  for (let i = 0; i < 600; i++) {
    const body = await album(query, { task_id: taskId });
    if (body.status === 1) return body;
    if (body.status === -1) throw new ApiFailure(body.task_failure_message || "INTERNAL_ERROR");
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error("The server is still working on it; reload the album in a while.");
}

$("album-add").addEventListener("submit", async (event) => {
  event.preventDefault();
  const files = Array.from($("album-add-files").files);
  const button = event.submitter;
  busy(button, true);
  let added = 0;
  const problems = [];
  const notes = [];
  try {
    for (const [i, file] of files.entries()) {
      albumStatus(`Adding ${i + 1} of ${files.length}: ${file.name}…`);
      try {
        const photo = await preparePhoto(file);
        if (photo.note) notes.push(photo.note);
        const body = await album("addimage", { facealbum_token: albumToken, image_file: photo.blob });
        if (!body.faces.length) problems.push(`${file.name}: no face found. ${smallestFace(photo.img)}`);
        await savePictures(body.faces.map((f) => [f.face_token, facePicture(photo.img, f.face_rectangle)]));
        added += body.faces.length;
      } catch (err) {
        problems.push(`${file.name}: ${err.message}`);
      }
    }
    albumStatus(`Added ${added} face${added === 1 ? "" : "s"}; grouping them by person…`);
    const started = await album("groupface", { facealbum_token: albumToken, operation_type: "incremental" });
    await waitForTask("groupfacetaskquery", started.task_id);
    await loadPeople();
    albumStatus(`Added ${added} face${added === 1 ? "" : "s"} and grouped them.` + (problems.length ? " Left out: " + problems.join(" ") : "") +
      (notes.length ? " " + notes.join(" ") : ""), problems.length > 0);
    $("album-add-files").value = "";
  } catch (err) {
    albumStatus("Adding photos failed. " + err.message, true);
  } finally {
    busy(button, false);
  }
});

// -- Keys (operator only) ---------------------------------------------------------------------------------
const admin = (route, fields, secret = sessionStorage.getItem("faceplus.operator_secret")) =>
  api(route, { ...fields, operator_secret: secret || "" }, undefined, CONSOLE + "admin/keys/");

function keysStatus(text, error) {
  $("keys-status").textContent = text;
  $("keys-status").classList.toggle("error", !!error);
}

const when = (seconds) => new Date(seconds * 1000).toISOString().slice(0, 16).replace("T", " ") + " UTC";

async function loadKeys(secret) {
  try {
    const body = await admin("list", {}, secret);
    if (secret) sessionStorage.setItem("faceplus.operator_secret", secret);
    $("operator-form").hidden = true;
    $("keys-detail").hidden = false;
    const rows = $("keys-table").querySelector("tbody");
    rows.innerHTML = "";
    for (const key of body.keys) {
      const tr = document.createElement("tr");
      tr.dataset.apiKey = key.api_key;
      tr.dataset.state = key.revoked ? "revoked" : "live";
      const mine = key.api_key === credentials().key;
      const cells = [key.api_key, key.name || "—", when(key.created), key.revoked ? "revoked " + when(key.revoked) : mine ? "live (you)" : "live"];
      for (const text of cells) {
        const td = document.createElement("td");
        td.textContent = text;
        tr.append(td);
      }
      const td = document.createElement("td");
      if (!key.revoked) {
        const revoke = document.createElement("button");
        revoke.type = "button";
        revoke.className = "danger small revoke";
        revoke.textContent = "Revoke";
        revoke.addEventListener("click", () => revokeKey(key.api_key, mine));
        td.append(revoke);
      }
      tr.append(td);
      rows.append(tr);
    }
    keysStatus(`${body.keys.length} key${body.keys.length === 1 ? "" : "s"}.`);
  } catch (err) {
    if (err.code === "OPERATOR_SECRET_INVALID" || err.code === "OPERATOR_DISABLED") {
      sessionStorage.removeItem("faceplus.operator_secret");
      $("operator-form").hidden = false;
      $("keys-detail").hidden = true;
    }
    keysStatus("Listing keys failed. " + err.message, true);
  }
}

async function revokeKey(apiKey, mine) {
  try {
    await admin("revoke", { target_api_key: apiKey });
    if (mine) {
      $("signout").click();
      $("signin-error").textContent = "You revoked the key you were signed in with. Sign in with another key.";
      return;
    }
    await loadKeys();
    keysStatus(`Revoked ${apiKey}: it stops working at once.`);
  } catch (err) {
    keysStatus("Revoking failed. " + err.message, true);
  }
}

$("operator-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const secret = $("operator-secret").value.trim();
  $("operator-secret").value = "";
  loadKeys(secret);
});

$("key-create").addEventListener("submit", async (event) => {
  event.preventDefault();
  try {
    const made = await admin("create", { name: $("key-name").value.trim() });
    $("key-new-key").textContent = made.api_key;
    $("key-new-secret").textContent = made.api_secret;
    $("key-new").hidden = false;
    $("key-name").value = "";
    await loadKeys();
    keysStatus(`Created key ${made.api_key}.`);
  } catch (err) {
    keysStatus("Creating a key failed. " + err.message, true);
  }
});

fillFarSelects();
if (signedIn()) loadLimits();
route();
