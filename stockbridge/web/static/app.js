// stockbridge's page: the grid of files with their state on each agency, the agencies, the batches
// and the files not taken, kept current by the server's event stream. Plain ES module, no framework,
// nothing from a CDN (the page works offline); the CSP allows no inline script or style, so every
// element is built here and styled by classes in app.css. Data is only ever set as text, never HTML.

const PAGE_SIZE = 60;
const STATES = {
  uploaded: { mark: "✓", words: "uploaded" },
  uploading: { mark: "↑", words: "uploading now" },
  scheduled: { mark: "◷", words: "scheduled" },
  pending: { mark: "…", words: "waiting" },
  held: { mark: "‖", words: "held" },
  failed: { mark: "!", words: "failed" },
  rejected: { mark: "✕", words: "rejected" },
};
const NEEDS_LOOK = new Set(["held", "failed", "rejected"]);
const KIND_ICONS = { vector: "/static/icons/vector.svg", video: "/static/icons/video.svg" };
const NO_PICTURE = "/static/icons/photo.svg";
const KIND_WORDS = { raster: "Photo", vector: "Vector", video: "Video", release: "Release" };
const FILTER_KEYS = ["q", "platform", "state", "since"];

const view = {
  filter: {},
  cards: new Map(), // file id -> <li>
  total: 0,
  loaded: 0,
  loading: false,
  generation: 0, // bumps when the filter changes, so a late answer for the old filter is dropped
  platforms: [],
  labels: new Map(),
  detailId: null,
  refused: false,
};

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------- talking to the service

class Refused extends Error {}

async function api(path, options = {}) {
  if (view.refused) throw new Refused("refused");
  const response = await fetch(path, { credentials: "same-origin", ...options });
  if (response.status === 401) {
    showRefused();
    throw new Refused("refused");
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    throw new Error((body && body.error) || `The service answered ${response.status}.`);
  }
  return body;
}

async function act(action, payload, button) {
  if (button) button.disabled = true;
  try {
    const answer = await api(`/api/actions/${action}`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(payload),
    });
    announce(answer.message || "Done.");
    return true;
  } catch (error) {
    if (!(error instanceof Refused)) announce(error.message, true);
    return false;
  } finally {
    if (button) button.disabled = false;
    schedulePlatforms();
  }
}

function showRefused() {
  if (view.refused) return;
  view.refused = true;
  setLive("offline", "Signed out");
  const banner = $("banner");
  banner.replaceChildren(
    text("strong", "This page's access was refused. "),
    document.createTextNode("The link may be old or the token was changed. Run "),
    text("code", "stockbridge web url"),
    document.createTextNode(" and open the link it prints."),
  );
  banner.hidden = false;
}

function announce(message, isError = false) {
  const region = $("announce");
  region.textContent = message;
  const toast = document.createElement("div");
  toast.className = isError ? "toast error" : "toast";
  toast.setAttribute("role", isError ? "alert" : "status");
  toast.textContent = message;
  document.body.append(toast);
  setTimeout(() => toast.remove(), isError ? 9000 : 5000);
}

// ---------------------------------------------------------------- small helpers

function text(tag, content, className) {
  const element = document.createElement(tag);
  if (content !== undefined && content !== null) element.textContent = content;
  if (className) element.className = className;
  return element;
}

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: "short" });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

function when(iso) {
  if (!iso) return "";
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const seconds = (date.getTime() - Date.now()) / 1000;
  const size = Math.abs(seconds);
  if (size < 45) return seconds < 0 ? "just now" : relative.format(Math.max(1, Math.round(seconds)), "second");
  if (size < 3600) return relative.format(Math.round(seconds / 60), "minute");
  if (size < 6 * 3600) return relative.format(Math.round(seconds / 3600), "hour");
  const today = new Date().toDateString() === date.toDateString();
  return today ? `today ${timeOnly.format(date)}` : dateTime.format(date);
}

function timeElement(iso) {
  const element = text("time", when(iso));
  if (iso) {
    element.dateTime = iso;
    const date = new Date(iso);
    if (!Number.isNaN(date.getTime())) element.title = dateTime.format(date);
  }
  return element;
}

function megabytes(bytes) {
  if (bytes < 1e6) return `${Math.max(1, Math.round(bytes / 1e3))} kB`;
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function label(platform) {
  return view.labels.get(platform) || platform;
}

// A chip has room for a word: "Adobe" of "Adobe Stock".
function shortLabel(platform) {
  return label(platform).split(/\s+/)[0];
}

function chip(platform, state, reason) {
  const known = STATES[state] || { mark: "?", words: state };
  const element = text("li", null, `chip state-${state}`);
  element.dataset.platform = platform;
  element.dataset.state = state;
  element.append(text("span", known.mark, "chip-mark"), text("span", shortLabel(platform), "chip-name"));
  element.querySelector(".chip-mark").setAttribute("aria-hidden", "true");
  const spoken = `${label(platform)}: ${known.words}`;
  element.setAttribute("aria-label", spoken);
  element.title = reason ? `${spoken}. ${reason}` : spoken;
  return element;
}

// A thumbnail is made in the background after a file is taken, so it may answer 404 at first: show
// the icon, and ask again a few times, a little later each time (a later event also asks again).
const THUMB_RETRIES = [2000, 5000, 15000];

function pictureFor(item, img, attempt = 0) {
  const fallback = KIND_ICONS[item.kind] || NO_PICTURE;
  img.classList.toggle("icon", !item.thumb);
  img.src = item.thumb || fallback;
  if (!item.thumb) return;
  img.addEventListener(
    "error",
    () => {
      img.classList.add("icon");
      img.src = fallback;
      if (attempt < THUMB_RETRIES.length) {
        setTimeout(() => {
          if (img.isConnected && img.dataset.for === item.id && img.classList.contains("icon")) {
            pictureFor(item, img, attempt + 1);
          }
        }, THUMB_RETRIES[attempt]);
      }
    },
    { once: true },
  );
}

function sortedPlatforms(platforms) {
  const order = new Map(view.platforms.map((platform, index) => [platform.name, index]));
  return Object.entries(platforms || {}).sort(
    ([a], [b]) => (order.get(a) ?? 999) - (order.get(b) ?? 999) || a.localeCompare(b),
  );
}

// ---------------------------------------------------------------- the grid

function fillCard(card, item) {
  card.dataset.id = item.id;
  const img = card.querySelector("img");
  // A thumbnail is made in the background and may answer 404 at first: try again on a later refresh.
  if (img.dataset.for !== item.id || (item.thumb && img.classList.contains("icon"))) {
    img.dataset.for = item.id;
    pictureFor(item, img);
  }
  card.querySelector(".card-name").textContent = item.name;
  card.querySelector(".card-open").setAttribute("aria-label", `${item.name}: details`);
  const entries = sortedPlatforms(item.platforms);
  card.querySelector(".chips").replaceChildren(
    ...entries.map(([name, job]) => chip(name, job.state, job.reason)),
  );
  const troubles = entries.filter(([, job]) => NEEDS_LOOK.has(job.state));
  const reason = card.querySelector(".card-reason");
  card.classList.toggle("needs-look", troubles.length > 0);
  if (troubles.length) {
    const [name, job] = troubles[0];
    const more = troubles.length > 1 ? ` (+${troubles.length - 1} more)` : "";
    reason.textContent = `${label(name)}: ${job.reason || STATES[job.state].words}${more}`;
    reason.hidden = false;
  } else {
    reason.textContent = "";
    reason.hidden = true;
  }
}

function makeCard(item) {
  const card = $("card-template").content.firstElementChild.cloneNode(true);
  card.querySelector(".card-open").addEventListener("click", () => openDetail(card.dataset.id));
  fillCard(card, item);
  view.cards.set(item.id, card);
  return card;
}

function query(offset, limit) {
  const params = new URLSearchParams();
  for (const key of FILTER_KEYS) if (view.filter[key]) params.set(key, view.filter[key]);
  params.set("offset", String(offset));
  params.set("limit", String(limit));
  return `/api/files?${params}`;
}

function showCount() {
  const filtered = FILTER_KEYS.some((key) => view.filter[key]);
  const total = view.total.toLocaleString();
  $("count").textContent = filtered ? `${total} matching` : `${total} files`;
  $("more").hidden = view.loaded >= view.total;
  const empty = $("empty");
  empty.hidden = view.total > 0;
  empty.textContent = filtered
    ? "No file matches these filters."
    : "No files yet. Export photos into the watched folder and they appear here.";
}

async function loadPage() {
  if (view.loading || view.refused) return;
  view.loading = true;
  const generation = view.generation;
  const grid = $("grid");
  try {
    const page = await api(query(view.loaded, PAGE_SIZE));
    if (generation !== view.generation) return;
    const fragment = document.createDocumentFragment();
    for (const item of page.items) {
      const known = view.cards.get(item.id);
      if (known) fillCard(known, item);
      else fragment.append(makeCard(item));
    }
    grid.append(fragment);
    view.loaded += page.items.length;
    view.total = page.total;
    if (page.items.length === 0) view.total = view.loaded;
    showCount();
    grid.setAttribute("aria-busy", "false");
    if (!document.body.dataset.ready) firstPaint();
  } catch (error) {
    if (!(error instanceof Refused)) announce(`Could not load the files: ${error.message}`, true);
  } finally {
    view.loading = false;
  }
}

function firstPaint() {
  document.body.dataset.ready = "true";
  performance.mark("sb:grid");
  requestAnimationFrame(() => requestAnimationFrame(() => performance.mark("sb:grid-painted")));
}

// The newest files again: new arrivals go in at their place, known ones are refreshed in place.
async function refreshHead() {
  if (view.refused) return;
  const generation = view.generation;
  try {
    const page = await api(query(0, PAGE_SIZE));
    if (generation !== view.generation) return;
    let previous = null;
    let added = 0;
    for (const item of page.items) {
      let card = view.cards.get(item.id);
      if (card) fillCard(card, item);
      else {
        card = makeCard(item);
        if (previous) previous.after(card);
        else $("grid").prepend(card);
        added += 1;
      }
      previous = card;
    }
    view.loaded += added;
    view.total = page.total;
    showCount();
  } catch (error) {
    if (!(error instanceof Refused)) setLive("offline");
  }
}

async function refreshFile(id) {
  const card = view.cards.get(id);
  if (!card && view.detailId !== id) return;
  try {
    const item = await api(`/api/files/${encodeURIComponent(id)}`);
    if (card) fillCard(card, item);
    if (view.detailId === id) fillDetail(item);
  } catch {
    /* the next event or reconnect refreshes it */
  }
}

function resetGrid() {
  view.generation += 1;
  view.cards.clear();
  view.loaded = 0;
  view.total = 0;
  view.loading = false;
  $("grid").replaceChildren();
  $("grid").setAttribute("aria-busy", "true");
  loadPage();
}

// ---------------------------------------------------------------- filters, kept in the address's #

function readHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  const filter = {};
  for (const key of FILTER_KEYS) {
    const value = params.get(key);
    if (value) filter[key] = value;
  }
  return filter;
}

function writeHash() {
  const params = new URLSearchParams();
  for (const key of FILTER_KEYS) if (view.filter[key]) params.set(key, view.filter[key]);
  const hash = params.toString();
  history.replaceState(null, "", hash ? `#${hash}` : `${location.pathname}${location.search}`);
}

function showFilter() {
  for (const key of FILTER_KEYS) {
    const field = $(`filter-${key}`);
    const value = view.filter[key] || "";
    if (field.tagName === "SELECT" && value && ![...field.options].some((o) => o.value === value)) {
      field.append(new Option(value, value)); // e.g. a date typed into the address: keep it visible
    }
    field.value = value;
  }
}

function applyFilter(filter) {
  const same = FILTER_KEYS.every((key) => (filter[key] || "") === (view.filter[key] || ""));
  view.filter = filter;
  showFilter();
  if (!same) {
    writeHash();
    resetGrid();
  }
}

function filterFromForm() {
  const filter = {};
  for (const key of FILTER_KEYS) {
    const value = $(`filter-${key}`).value.trim();
    if (value) filter[key] = value;
  }
  return filter;
}

function wireFilters() {
  const form = $("filters");
  let typing = 0;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    applyFilter(filterFromForm());
  });
  form.addEventListener("change", () => applyFilter(filterFromForm()));
  $("filter-q").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => applyFilter(filterFromForm()), 250);
  });
  form.addEventListener("reset", (event) => {
    event.preventDefault();
    applyFilter({});
  });
  window.addEventListener("hashchange", () => applyFilter(readHash()));
}

// ---------------------------------------------------------------- agencies

function platformCard(platform) {
  const card = text("li", null, "platform-card");
  card.dataset.platform = platform.name;
  card.dataset.activity = platform.activity;
  const head = text("div", null, "platform-head");
  head.append(text("h3", platform.label || platform.name), activityBadge(platform));
  card.append(head, text("p", platform.transport ? platform.transport.toUpperCase() : "", "muted small"));

  const progress = text("div", null, "progress");
  progress.hidden = !platform.progress;
  const bar = document.createElement("progress");
  bar.max = 1;
  bar.value = 0;
  progress.append(bar, text("p", "", "progress-text small"));
  card.append(progress);
  if (platform.progress) showProgress(card, platform.progress);

  if (platform.paused) {
    const paused = text("p", null, "paused-reason");
    const reason = (platform.paused.reason || "").replace(/[.\s]+$/, "");
    paused.append(text("strong", "Paused: "), document.createTextNode(`${reason}.`));
    if (platform.paused.until) {
      const words = platform.paused.kind === "unreachable" ? " Tries again by itself " : " Goes on by itself ";
      paused.append(document.createTextNode(words), timeElement(platform.paused.until), ".");
    }
    if (platform.paused.advice) {
      paused.append(text("span", platform.paused.advice, "advice paused-advice"));
    } else if (!platform.paused.until && platform.paused.kind !== "manual") {
      paused.append(document.createTextNode(" Fix it, then press Try again now."));
    }
    card.append(paused);
  }

  const facts = text("dl", null, "facts");
  const today = platform.today || { uploaded: 0, cap: null };
  const todayText = today.cap ? `${today.uploaded} of ${today.cap}` : `${today.uploaded}`;
  fact(facts, "Today", todayText);
  if (today.cap) {
    const meter = document.createElement("meter");
    meter.min = 0;
    meter.max = today.cap;
    meter.value = Math.min(today.uploaded, today.cap);
    meter.high = today.cap * 0.9;
    meter.setAttribute("aria-label", `Today's uploads: ${todayText}`);
    facts.lastElementChild.append(meter);
  }
  const counts = platform.counts || {};
  const queued = [
    counts.pending ? `${counts.pending} waiting` : "",
    counts.scheduled ? `${counts.scheduled} scheduled` : "",
  ].filter(Boolean);
  if (queued.length) fact(facts, "To send", queued.join(", "));
  const waiting = ["held", "failed", "rejected"].filter((state) => counts[state]);
  if (waiting.length) {
    const line = text("span", null, "count-chips");
    for (const state of waiting) {
      const mark = text("span", `${STATES[state].mark} ${counts[state]} ${STATES[state].words}`, `chip state-${state}`);
      line.append(mark);
    }
    fact(facts, "Needs a look", line);
  }
  if (platform.next_batch) fact(facts, "Next batch", timeElement(platform.next_batch));
  if (platform.last_batch) fact(facts, "Last batch", lastBatch(platform.last_batch));
  card.append(facts);

  const actions = text("div", null, "platform-actions");
  const isPaused = platform.activity === "paused" || platform.paused;
  // A pause you asked for is lifted by Resume; any other (a server down, a refused login) by trying again.
  const [action, words] = !isPaused
    ? ["pause", "Pause"]
    : platform.paused && platform.paused.kind !== "manual"
      ? ["retry", "Try again now"]
      : ["resume", "Resume"];
  const toggle = text("button", words, "button small-button");
  toggle.type = "button";
  toggle.dataset.action = action;
  toggle.addEventListener("click", () => act(action, { platform: platform.name }, toggle));
  const retry = text("button", "Retry failed", "button subtle small-button");
  retry.type = "button";
  retry.dataset.action = "retry-failed";
  retry.addEventListener("click", () => act("retry", { platform: platform.name }, retry));
  retry.hidden = action === "retry" || (platform.counts !== undefined && !counts.failed);
  const show = text("button", "Show its files", "button subtle small-button");
  show.type = "button";
  show.dataset.action = "show";
  show.addEventListener("click", () => {
    applyFilter({ ...view.filter, platform: platform.name });
    $("files-heading").focus();
  });
  actions.append(toggle, retry, show);
  card.append(actions);
  return card;
}

function fact(list, name, value) {
  const row = text("div", null, "fact");
  const definition = text("dd");
  definition.append(value);
  row.append(text("dt", name), definition);
  list.append(row);
}

function lastBatch(batch) {
  const span = text("span");
  const parts = [batch.closed ? `${batch.uploaded ?? 0} sent` : `${batch.uploaded ?? 0} of ${batch.files} sent so far`];
  if (batch.failed) parts.push(`${batch.failed} failed`);
  const started = batch.closed ? "" : "started ";
  span.append(document.createTextNode(`${parts.join(", ")}, ${started}`), timeElement(batch.closed || batch.opened));
  return span;
}

const ACTIVITY = {
  uploading: { mark: "↑", words: "Uploading" },
  idle: { mark: "✓", words: "Idle" },
  paused: { mark: "‖", words: "Paused" },
  scheduled: { mark: "◷", words: "Scheduled" },
};

function activityBadge(platform) {
  const known = ACTIVITY[platform.activity] || { mark: "•", words: platform.activity };
  const badge = text("span", null, `badge activity-${platform.activity}`);
  const mark = text("span", known.mark, "chip-mark");
  mark.setAttribute("aria-hidden", "true");
  badge.append(mark, document.createTextNode(known.words));
  return badge;
}

function showProgress(card, progress) {
  const box = card.querySelector(".progress");
  const bar = box.querySelector("progress");
  const share = progress.total ? Math.min(1, progress.sent / progress.total) : 0;
  bar.value = share;
  bar.setAttribute("aria-label", `Sending ${progress.file}`);
  box.querySelector(".progress-text").textContent = progress.total
    ? `${progress.file}: ${megabytes(progress.sent)} of ${megabytes(progress.total)}`
    : progress.file;
  box.hidden = false;
}

function showSummary() {
  const names = (activity) => view.platforms.filter((p) => p.activity === activity);
  const uploading = names("uploading");
  const paused = view.platforms.filter((p) => p.activity === "paused" || p.paused);
  const parts = [];
  if (uploading.length) parts.push(`Uploading to ${uploading.map((p) => p.label || p.name).join(", ")}`);
  if (paused.length) parts.push(`${paused.length} paused`);
  if (!parts.length && view.platforms.length) parts.push("All quiet");
  $("summary").textContent = parts.join(" · ");
}

// Cards are rebuilt only when what they show changed (progress is updated in place), and a button
// that had the keyboard's focus has it again in the new card: events never pull focus away.
function showPlatforms(platforms) {
  const list = $("platforms");
  const old = new Map([...list.children].map((card) => [card.dataset.platform, card]));
  const focused = document.activeElement;
  const cards = platforms.map((platform) => {
    const key = JSON.stringify({ ...platform, progress: null });
    const known = old.get(platform.name);
    if (known && known.dataset.key === key) {
      if (platform.progress) showProgress(known, platform.progress);
      else known.querySelector(".progress").hidden = true;
      return known;
    }
    const card = platformCard(platform);
    card.dataset.key = key;
    if (known && focused && known.contains(focused) && focused.dataset.action) {
      requestAnimationFrame(() => card.querySelector(`[data-action="${focused.dataset.action}"]`)?.focus());
    }
    return card;
  });
  if (cards.length !== list.children.length || cards.some((card, index) => list.children[index] !== card)) {
    list.replaceChildren(...cards);
  }
  list.setAttribute("aria-busy", "false");
}

async function loadPlatforms() {
  try {
    const platforms = await api("/api/platforms");
    view.platforms = platforms;
    view.labels = new Map(platforms.map((p) => [p.name, p.label || p.name]));
    for (const element of document.querySelectorAll(".grid .chip")) {
      element.querySelector(".chip-name").textContent = shortLabel(element.dataset.platform);
    }
    showPlatforms(platforms);
    const select = $("filter-platform");
    const chosen = view.filter.platform || "";
    select.replaceChildren(new Option("All agencies", ""));
    for (const p of platforms) select.append(new Option(p.label || p.name, p.name));
    if (chosen && !platforms.some((p) => p.name === chosen)) select.append(new Option(chosen, chosen));
    select.value = chosen;
    showSummary();
  } catch (error) {
    if (!(error instanceof Refused)) setLive("offline");
  }
}

// ---------------------------------------------------------------- not taken, batches

async function loadNotTaken() {
  try {
    const entries = await api("/api/not-taken");
    $("not-taken").replaceChildren(
      ...entries.map((entry) => {
        const row = text("li", null, "not-taken-item");
        row.append(text("p", entry.path, "path"), text("p", entry.reason, "reason"));
        if (entry.advice) row.append(text("p", entry.advice, "advice"));
        return row;
      }),
    );
    $("not-taken-count").textContent = entries.length ? `${entries.length}` : "";
    if (!entries.length) $("not-taken").append(text("li", "Every file seen was taken.", "muted"));
  } catch {
    /* shown again on the next event */
  }
}

async function loadBatches() {
  try {
    const history = await api("/api/batches?limit=20");
    const rows = (history.batches || []).map((batch) => {
      const row = text("tr");
      const opened = text("td");
      opened.append(timeElement(batch.opened));
      if (!batch.closed) opened.append(text("span", " open", "muted"));
      row.append(
        text("td", label(batch.platform)),
        opened,
        text("td", `${batch.uploaded} of ${batch.files}`, "num"),
        text("td", String(batch.failed), batch.failed ? "num bad" : "num"),
      );
      return row;
    });
    if (!rows.length) {
      const cell = text("td", "No batch yet.", "muted");
      cell.colSpan = 4;
      const row = text("tr");
      row.append(cell);
      rows.push(row);
    }
    $("batches").replaceChildren(...rows);
  } catch {
    /* shown again on the next event */
  }
}

// ---------------------------------------------------------------- one file's details

async function openDetail(id) {
  const dialog = $("detail");
  view.detailId = id;
  const card = view.cards.get(id);
  $("detail-name").textContent = card ? card.querySelector(".card-name").textContent : "File";
  $("detail-platforms").replaceChildren(text("li", "Loading…", "muted"));
  $("detail-history").replaceChildren();
  if (!dialog.open) dialog.showModal();
  try {
    fillDetail(await api(`/api/files/${encodeURIComponent(id)}`));
  } catch (error) {
    if (!(error instanceof Refused)) {
      $("detail-platforms").replaceChildren(text("li", `Could not load: ${error.message}`, "bad"));
    }
  }
}

function fillDetail(item) {
  if (view.detailId !== item.id) return;
  $("detail-name").textContent = item.name;
  const picture = $("detail-picture");
  const img = document.createElement("img");
  img.alt = `Preview of ${item.name}`;
  img.dataset.for = item.id;
  pictureFor(item, img);
  picture.replaceChildren(img);
  const meta = $("detail-meta");
  const facts = [KIND_WORDS[item.kind] || "File"];
  if (item.type) facts.push(item.type.toUpperCase());
  if (item.size) facts.push(megabytes(item.size));
  meta.replaceChildren(document.createTextNode(`${facts.join(" · ")} · seen `), timeElement(item.seen));
  if (item.path && item.path !== item.name) meta.append(text("span", item.path, "path detail-path"));

  $("detail-platforms").replaceChildren(
    ...sortedPlatforms(item.platforms).map(([name, job]) => {
      const row = text("li", null, "detail-platform");
      const head = text("div", null, "detail-platform-head");
      const chips = text("ul", null, "chips");
      chips.append(chip(name, job.state, job.reason));
      head.append(chips, text("span", STATES[job.state]?.words || job.state, "state-words"));
      if (job.updated) head.append(timeElement(job.updated));
      row.append(head);
      if (job.reason) row.append(text("p", job.reason, "reason"));
      if (job.advice) row.append(text("p", job.advice, "advice"));
      if (job.state === "failed" && job.job != null) {
        const retry = text("button", `Retry on ${label(name)}`, "button small-button");
        retry.type = "button";
        retry.addEventListener("click", async () => {
          if (await act("retry", { job: job.job }, retry)) refreshFile(item.id);
        });
        row.append(retry);
      }
      if (job.state === "held") {
        const recheck = text("button", "Look at it again", "button subtle small-button");
        recheck.type = "button";
        recheck.addEventListener("click", () => act("recheck", {}, recheck));
        row.append(recheck);
      }
      return row;
    }),
  );
  // Sending again on purpose is for a re-export held so that it is not sent twice by accident.
  $("detail-resend").hidden = !Object.values(item.platforms || {}).some((job) => job.state === "held");
  if (!Object.keys(item.platforms || {}).length) {
    $("detail-platforms").append(text("li", "No agency takes this file.", "muted"));
  }
  const history = (item.history || []).slice().reverse();
  $("detail-history").replaceChildren(
    ...history.map((entry) => {
      const row = text("li", null, "history-item");
      row.append(
        timeElement(entry.at),
        text("span", `${label(entry.platform)}: ${STATES[entry.state]?.words || entry.state}`),
      );
      if (entry.reason) row.append(text("span", entry.reason, "muted"));
      return row;
    }),
  );
  if (!history.length) $("detail-history").append(text("li", "Nothing yet.", "muted"));
}

function wireDetail() {
  const dialog = $("detail");
  $("detail-close").addEventListener("click", () => dialog.close());
  dialog.addEventListener("close", () => {
    view.detailId = null;
  });
  dialog.addEventListener("click", (event) => {
    if (event.target === dialog) dialog.close(); // a click on the backdrop
  });
  $("detail-resend").addEventListener("click", async (event) => {
    if (!view.detailId) return;
    const id = view.detailId;
    if (await act("resend", { id }, event.currentTarget)) refreshFile(id);
  });
}

// ---------------------------------------------------------------- live updates

const timers = {};
function later(name, delay, work) {
  if (timers[name]) return;
  timers[name] = setTimeout(() => {
    timers[name] = 0;
    work();
  }, delay);
}
const schedulePlatforms = () => later("platforms", 300, loadPlatforms);
const scheduleHead = () => later("head", 300, refreshHead);
const scheduleBatches = () => later("batches", 1500, loadBatches);
const scheduleNotTaken = () => later("notTaken", 1000, loadNotTaken);
const changedFiles = new Set();
function scheduleFile(id) {
  changedFiles.add(id);
  later("files", 200, () => {
    const ids = [...changedFiles];
    changedFiles.clear();
    if (ids.length > 30) refreshHead();
    else ids.forEach(refreshFile);
  });
}

function setLive(state, words) {
  const live = $("live");
  live.dataset.state = state;
  $("live-text").textContent = words || { live: "Live", offline: "Offline", connecting: "Connecting…" }[state];
  live.title =
    state === "live" ? "Updates arrive as they happen." : "Not connected to the service; trying again.";
}

let source = null;
let backoff = 1000;
let hadOutage = false;

function connect() {
  if (view.refused) return;
  source = new EventSource("/api/events");
  source.addEventListener("open", () => {
    backoff = 1000;
    setLive("live");
    if (hadOutage) {
      hadOutage = false;
      refreshAll(); // events missed while away
    }
  });
  source.addEventListener("error", () => {
    source.close();
    hadOutage = true;
    setLive("offline");
    api("/api/status").catch(() => {}); // a 401 here shows the refused banner and stops retrying
    const wait = backoff;
    backoff = Math.min(backoff * 2, 30000);
    setTimeout(connect, wait);
  });
  const data = (handler) => (event) => {
    try {
      handler(JSON.parse(event.data));
    } catch {
      /* a malformed event is skipped; the next one or the reconnect refreshes */
    }
  };
  source.addEventListener(
    "job",
    data((event) => {
      scheduleFile(event.id);
      scheduleHead();
      schedulePlatforms();
      scheduleBatches();
    }),
  );
  source.addEventListener(
    "asset",
    data(() => {
      scheduleHead();
      scheduleNotTaken();
    }),
  );
  source.addEventListener(
    "progress",
    data((event) => {
      const card = [...$("platforms").children].find((c) => c.dataset.platform === event.platform);
      if (card) showProgress(card, event);
      else schedulePlatforms();
    }),
  );
  // A thumbnail made in the background: the card shows it now instead of its icon.
  source.addEventListener("thumb", data((event) => scheduleFile(event.id)));
  source.addEventListener("platform", data(schedulePlatforms));
  source.addEventListener("notice", data(scheduleNotTaken));
}

function refreshAll() {
  loadPlatforms();
  refreshHead();
  loadNotTaken();
  loadBatches();
}

// ---------------------------------------------------------------- start

function wirePaging() {
  $("more").addEventListener("click", loadPage);
  if ("IntersectionObserver" in window) {
    const observer = new IntersectionObserver(
      (entries) => {
        if (entries.some((entry) => entry.isIntersecting) && view.loaded < view.total) loadPage();
      },
      { rootMargin: "800px 0px" },
    );
    observer.observe($("sentinel"));
  }
}

function start() {
  view.filter = readHash();
  showFilter();
  wireFilters();
  wireDetail();
  wirePaging();
  document.querySelector(".skip").addEventListener("click", (event) => {
    event.preventDefault(); // the address's # holds the filter, not an anchor
    $("files-heading").focus();
  });
  $("recheck").addEventListener("click", (event) => act("recheck", {}, event.currentTarget));
  loadPage();
  loadPlatforms().then(loadBatches); // the batches name agencies by their labels
  loadNotTaken();
  connect();
  setInterval(() => {
    // Relative times ("5 minutes ago") age; a minute is as fine as they claim to be.
    for (const element of document.querySelectorAll("time[datetime]")) {
      element.textContent = when(element.dateTime);
    }
  }, 60000);
}

start();
