// faceplus liveness page: FaceID-style action liveness through the public API (docs/LIVENESS.md).
// 1. /faceid/v3/sdk/get_biz_token with the reference photo (or a biz_token handed over in the URL fragment);
// 2. the camera (getUserMedia), one prompt per action, frames recorded as JPEGs with their times;
// 3. /faceid/v3/sdk/verify with frame_0..frame_<n-1> and timestamps; the verdict is shown per action.
"use strict";

const API = "/faceid/v3/sdk/";
const LEAD_MS = 800; // settle before the first prompt
const PROMPT_MS = 2600; // each action's prompt (the server allows 6 s per action)
const PROMPTS = {
  blink: "Blink",
  mouth: "Open your mouth, then close it",
  turn_left: "Turn your head to your left, then back",
  turn_right: "Turn your head to your right, then back",
  nod: "Nod: head down, then back up",
};
const $ = (id) => document.getElementById(id);

function credentials() {
  return { key: sessionStorage.getItem("faceplus.api_key"), secret: sessionStorage.getItem("faceplus.api_secret") };
}

/** POST a FormData to a FaceID route; resolve to the JSON body or throw its error_message. */
async function api(route, form) {
  const creds = credentials();
  form.append("api_key", creds.key || "");
  form.append("api_secret", creds.secret || "");
  let response;
  try {
    response = await fetch(API + route, { method: "POST", body: form });
  } catch (err) {
    throw new Error("the server cannot be reached (" + err.message + ")");
  }
  const body = await response.json().catch(() => ({ error_message: "HTTP " + response.status }));
  if (!response.ok || body.error_message) throw new Error(body.error_message || "HTTP " + response.status);
  return body;
}

function status(text) {
  $("liveness-status").textContent = text;
}

function prompt(action) {
  $("liveness-prompt").dataset.action = action || "";
  $("liveness-prompt").textContent = action ? PROMPTS[action] || action : "";
}

function steps(actions, reasons) {
  const list = $("liveness-steps");
  list.replaceChildren();
  actions.forEach((action, i) => {
    const li = document.createElement("li");
    li.textContent = PROMPTS[action] || action;
    if (reasons) {
      li.dataset.reason = reasons[i];
      li.textContent += " — " + reasons[i];
    }
    list.appendChild(li);
  });
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Record frames from the camera while showing each action's prompt in turn; returns {blobs, times}. */
async function record(video, actions, maxFrames) {
  const total = LEAD_MS + PROMPT_MS * actions.length;
  const interval = Math.max(100, Math.ceil(total / (maxFrames - 1)));
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  const ctx = canvas.getContext("2d");
  const blobs = [];
  const times = [];
  const t0 = performance.now();
  let shown = -1;
  while (blobs.length < maxFrames) {
    const t = performance.now() - t0;
    if (t > total) break;
    const step = t < LEAD_MS ? -1 : Math.min(actions.length - 1, Math.floor((t - LEAD_MS) / PROMPT_MS));
    if (step !== shown) {
      shown = step;
      prompt(step >= 0 ? actions[step] : "");
      if (step < 0) status("Look at the camera…");
    }
    ctx.drawImage(video, 0, 0, canvas.width, canvas.height);
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.9));
    blobs.push(blob);
    times.push(Math.round(t));
    const next = t0 + (blobs.length) * interval;
    await sleep(Math.max(0, next - performance.now()));
  }
  prompt("");
  return { blobs, times };
}

function show(body) {
  const result = $("liveness-result");
  const details = $("liveness-details");
  details.replaceChildren();
  const add = (name, value) => {
    const dt = document.createElement("dt");
    dt.textContent = name;
    const dd = document.createElement("dd");
    dd.textContent = value;
    details.append(dt, dd);
  };
  const live = body.liveness;
  add("result", body.result + (body.result === "PASS" ? "" : " (" + body.result_message + ")"));
  add("liveness score", String(live.liveness_score));
  add("frames", String(live.frames));
  if (live.failures.length) add("failures", live.failures.join(", "));
  const ref = body.verification && body.verification.ref1;
  if (ref) {
    const same = ref.confidence >= ref.thresholds["1e-4"];
    add("same person as the reference", (same ? "yes" : "no") + " (confidence " + ref.confidence.toFixed(1) +
      ", threshold at FAR 1e-4: " + ref.thresholds["1e-4"] + ")");
  }
  if (body.images) add("best frame", body.images.image_best.face_token);
  steps(live.actions.map((a) => a.action), live.actions.map((a) => a.reason));
  result.dataset.result = body.result;
}

async function run(event) {
  event.preventDefault();
  const button = $("liveness-go");
  button.disabled = true;
  $("liveness-result").dataset.result = "";
  $("liveness-details").replaceChildren();
  let stream = null;
  try {
    const handed = new URLSearchParams(location.hash.slice(1));
    let token = handed.get("biz_token");
    let actions = (handed.get("actions") || "").split(",").filter(Boolean);
    let maxFrames = Number(handed.get("max_frames") || 60);
    if (!token) {
      const file = $("liveness-reference").files[0];
      if (!file) throw new Error("choose a reference photo");
      status("Getting a challenge…");
      const form = new FormData();
      form.append("image_ref1", file);
      const issued = await api("get_biz_token", form);
      token = issued.biz_token;
      actions = issued.actions;
      maxFrames = issued.max_frames;
    }
    steps(actions);
    status("Starting the camera…");
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
    const video = $("liveness-video");
    video.srcObject = stream;
    await video.play();
    while (!video.videoWidth) await sleep(50);
    const { blobs, times } = await record(video, actions, maxFrames);
    stream.getTracks().forEach((track) => track.stop());
    stream = null;
    status("Checking " + blobs.length + " frames…");
    const form = new FormData();
    form.append("biz_token", token);
    form.append("timestamps", times.join(","));
    blobs.forEach((blob, i) => form.append("frame_" + i, blob, "frame_" + i + ".jpg"));
    const body = await api("verify", form);
    show(body);
    status(body.result === "PASS" ? "Passed." : "Not passed: " + body.result_message);
  } catch (err) {
    status("Error: " + err.message);
    $("liveness-result").dataset.result = "ERROR";
  } finally {
    if (stream) stream.getTracks().forEach((track) => track.stop());
    button.disabled = false;
  }
}

function init() {
  const creds = credentials();
  $("liveness-signin").hidden = !!creds.key;
  $("liveness-start").hidden = !creds.key;
  $("nav").hidden = !creds.key;
  $("account").hidden = !creds.key;
  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem("faceplus.api_key");
    sessionStorage.removeItem("faceplus.api_secret");
    location.href = "index.html";
  });
  $("who").textContent = creds.key ? "key " + creds.key.slice(0, 8) + "…" : "";
  $("liveness-start").addEventListener("submit", run);
}

init();
