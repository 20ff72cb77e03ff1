// crosskd search page: every caption, id and read or heard text is inserted with
// textContent, never as HTML.
"use strict";

const byId = (id) => document.getElementById(id);

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

function mediaUrl(itemId, kind) {
  return `/videos/${encodeURIComponent(itemId)}/${kind}`;
}

// The indexed item a hit is: a segment of a segmented index, else the video itself.
const itemOf = (hit) => (hit.segment_id === undefined ? hit.video_id : hit.segment_id);

// Seconds as mm:ss (h:mm:ss from an hour on), rounded down or (up) up, as crosskd search prints.
function clock(seconds, up) {
  const rounded = Math.round(seconds * 1000) / 1000;
  const whole = up ? Math.ceil(rounded) : Math.floor(rounded);
  const two = (n) => String(n).padStart(2, "0");
  const hours = Math.floor(whole / 3600);
  const rest = `${two(Math.floor((whole % 3600) / 60))}:${two(whole % 60)}`;
  return hours ? `${hours}:${rest}` : rest;
}

// The video from the segment's start, paused at its end (a media fragment, #t=start,end).
function playUrl(hit) {
  const url = mediaUrl(itemOf(hit), "video");
  return hit.start === undefined ? url : `${url}#t=${hit.start},${hit.end}`;
}

function contributionBars(contributions, scale) {
  const bars = element("div", "bars");
  for (const [expert, value] of Object.entries(contributions)) {
    const row = element("div", "bar-row");
    row.title = `${expert}: ${value.toFixed(4)}`;
    row.append(element("span", "name", expert));
    const bar = element("div", value < 0 ? "bar negative" : "bar");
    bar.style.width = `${(100 * Math.abs(value)) / scale}%`;
    row.append(bar);
    bars.append(row);
  }
  return bars;
}

// What the video's experts read or heard (kind -> text: ocr, speech), as a definition list.
function readTexts(read) {
  const list = element("dl", "read");
  for (const [kind, text] of Object.entries(read)) {
    list.append(element("dt", "", kind));
    list.append(element("dd", "", text));
  }
  return list;
}

function still(hit) {
  if (hit.media.includes("thumbnail")) {
    const image = element("img");
    image.src = mediaUrl(itemOf(hit), "thumbnail");
    image.alt = hit.video_id;
    return image;
  }
  return element("div", "still", hit.video_id);
}

function card(hit, rank, scale) {
  const node = element("article", "card");
  node.dataset.videoId = hit.video_id;
  if (hit.segment_id !== undefined) node.dataset.segmentId = hit.segment_id;
  let picture = still(hit);
  node.append(picture);
  const title = element("h2");
  title.append(element("span", "video-id", `${rank}. ${hit.video_id}`));
  if (hit.start !== undefined) {
    const moment = element("span", "moment", `${clock(hit.start)}-${clock(hit.end, true)}`);
    moment.title = `segment ${hit.segment_id}: ${hit.start} s to ${hit.end} s`;
    title.append(moment);
  }
  title.append(element("span", "score", hit.score.toFixed(4)));
  if (hit.normalised_score !== undefined) {
    const normalised = element("span", "normalised", `QB-Norm ${hit.normalised_score.toPrecision(4)}`);
    normalised.title = "normalised score exp(beta score) / Z of this video";
    title.append(normalised);
  }
  node.append(title);
  const captions = element("ul", "captions");
  for (const caption of hit.captions.slice(0, 3)) captions.append(element("li", "", caption));
  node.append(captions);
  if (hit.read) node.append(readTexts(hit.read));
  node.append(contributionBars(hit.contributions, scale));
  if (hit.media.includes("video")) {
    node.addEventListener("click", () => {
      if (picture.tagName === "VIDEO") return;
      const player = element("video");
      player.src = playUrl(hit);
      player.controls = true;
      player.autoplay = true;
      picture.replaceWith(player);
      picture = player;
    });
  }
  return node;
}

function render(body) {
  const grid = byId("results");
  grid.replaceChildren();
  const values = body.results.flatMap((hit) => Object.values(hit.contributions).map(Math.abs));
  const scale = Math.max(1e-9, ...values);
  body.results.forEach((hit, i) => grid.append(card(hit, i + 1, scale)));
  const weights = Object.entries(body.query.weights)
    .map(([expert, w]) => `${expert} ${w.toFixed(2)}`).join(", ");
  const qbnorm = body.query.qbnorm;
  const ranking = !qbnorm ? "" : qbnorm.applied ? "; ranked by QB-Norm"
    : qbnorm.requested ? "; QB-Norm not applied (best video inactive): raw ranking" : "; raw ranking";
  byId("weights").textContent = `expert weights of this query: ${weights}${ranking}`;
  byId("message").textContent = body.results.length ? "" : "no results";
}

async function search(event) {
  event.preventDefault();
  const text = byId("query").value.trim();
  if (!text) return;
  const parameters = new URLSearchParams({ k: byId("k").value || "12" });
  parameters.set(byId("mode").value === "caption" ? "caption" : "q", text);
  if (!byId("qbnorm-option").hidden) parameters.set("qbnorm", byId("qbnorm").checked ? "1" : "0");
  if (!byId("per-video-option").hidden) parameters.set("per_video", String(byId("per-video").checked));
  byId("message").textContent = "searching…";
  try {
    const response = await fetch(`/search?${parameters}`);
    const body = await response.json();
    if (!response.ok) {
      byId("results").replaceChildren();
      byId("message").textContent = body.error || `error ${response.status}`;
      return;
    }
    render(body);
  } catch (error) {
    byId("message").textContent = `the server did not answer (${error})`;
  }
}

async function start() {
  byId("search-form").addEventListener("submit", search);
  const info = await (await fetch("/healthz")).json();
  // the collection's own name and counts, e.g. "12 videos of Holiday (9 with captions, ...)"
  byId("summary").textContent = `${info.collection.summary}, ${info.backend} search` +
    (info.qbnorm ? `, QB-Norm (beta ${info.qbnorm.beta}, bank of ${info.qbnorm.bank_size})` : "");
  document.title = `crosskd search: ${info.collection.title}`;
  byId("qbnorm-option").hidden = !info.qbnorm;
  byId("per-video-option").hidden = info.segments === undefined;
  if (!info.free_text) {
    byId("text-option").disabled = true;
    byId("mode").value = "caption";
    byId("query").placeholder = "VIDEO_ID:INDEX, e.g. a video id and its caption number";
  }
}

start();
