/** The web app: sign in, learn what to shoot, add photos and see each verdict, train, generate, browse, delete. */

import "./style.css";

import { Api, ApiError, type HistoryAvatar, type PhotoList, SessionExpired, uploadPhoto } from "./api";
import {
  type Session,
  finishCognitoSignIn,
  saveSession,
  savedSession,
  signInLocally,
  signOutUrl,
  startCognitoSignIn,
} from "./auth";
import { type AppConfig, loadConfig } from "./config";
import { EXAMPLES, drawExample } from "./guide";
import {
  type ModelStatus,
  PHOTO_TYPES,
  TOKEN,
  acceptedSummary,
  contentType,
  faceBoxStyle,
  fileProblem,
  isTraining,
  likenessText,
  trainingView,
  withToken,
} from "./logic";

// --- a small DOM helper: text is always set as text, never parsed as HTML ---------------------------------------
type Attrs = Record<string, string | boolean | number | undefined>;
function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs: Attrs = {},
  ...children: (Node | string | null | undefined)[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === undefined || value === false) continue;
    element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) if (child != null) element.append(child);
  return element;
}
const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

// --- state ------------------------------------------------------------------------------------------------------
type PhotoState = "uploading" | "checking" | "accepted" | "refused" | "not-sent" | "failed";
interface PhotoItem {
  key: string;
  name: string;
  photoId?: string;
  thumbnail?: string; // an object URL of the chosen file
  state: PhotoState;
  progress: number;
  messages: string[];
  face: { x: number; y: number; w: number; h: number } | null;
  facing?: string | null;
}

const NAMES = "avatar.photo-names";
let config: AppConfig;
let session: Session | null = null;
let api: Api;
const items: PhotoItem[] = [];
let photoPoll: number | undefined;
let modelPoll: number | undefined;
let lastModel: ModelStatus | null = null;
let historyCursor: string | null = null;

function announce(text: string): void {
  const region = $("announcer");
  region.textContent = "";
  window.setTimeout(() => (region.textContent = text), 50); // a changed text is read out, even the same twice
}

function rememberNames(): void {
  const names = Object.fromEntries(items.filter((i) => i.photoId).map((i) => [i.photoId, i.name]));
  sessionStorage.setItem(NAMES, JSON.stringify(names));
}

function rememberedNames(): Record<string, string> {
  return JSON.parse(sessionStorage.getItem(NAMES) ?? "{}");
}

// --- errors: an expired session goes back to sign-in, keeping the photo list --------------------------------------
async function guarded(action: () => Promise<void>, where?: HTMLElement): Promise<void> {
  try {
    if (where) where.textContent = "";
    await action();
  } catch (error) {
    if (error instanceof SessionExpired) {
      // Once: a request that was under way when the person was signed out must not reset the sign-in form.
      if (session) signOut("Your session ended: sign in again to carry on. Your photos are kept.");
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    if (where) where.textContent = message;
    announce(message);
  }
}

// --- sign in and out ----------------------------------------------------------------------------------------------
function renderSignIn(notice = ""): void {
  stopPolling();
  const main = $("main");
  main.replaceChildren();
  const error = h("p", { class: "error", role: "alert" });
  const intro = h(
    "p",
    {},
    "Upload 10 to 12 photos of yourself, and we make a personal image model that draws you in any scene you describe.",
  );
  const box = h("section", { class: "card sign-in", "aria-labelledby": "sign-in-title" }, h("h2", { id: "sign-in-title" }, "Sign in"), intro);
  if (notice) box.append(h("p", { class: "notice", role: "status" }, notice));
  if (config.auth.kind === "local") {
    const auth = config.auth;
    const field = h("input", { id: "user-name", name: "user", autocomplete: "username", required: true, pattern: "[A-Za-z0-9][A-Za-z0-9_.@+\\-]{0,63}" });
    const form = h(
      "form",
      {},
      h("p", { class: "hint" }, "Development sign-in of the local stack: any user name signs in as that user."),
      h("label", { for: "user-name" }, "User name"),
      field,
      h("button", { type: "submit" }, "Sign in"),
      error,
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      void guarded(async () => {
        signedIn(await signInLocally(auth, field.value.trim()));
      }, error);
    });
    box.append(form);
    main.append(box);
    field.focus();
  } else {
    const auth = config.auth;
    const button = h("button", { type: "button" }, "Sign in");
    button.addEventListener("click", () => void guarded(() => startCognitoSignIn(auth), error));
    box.append(button, error);
    main.append(box);
  }
  $("account").replaceChildren();
}

function signedIn(next: Session): void {
  session = next;
  saveSession(next);
  renderApp();
}

function signOut(notice = ""): void {
  session = null;
  saveSession(null);
  const away = notice ? null : signOutUrl(config.auth);
  if (away) {
    location.assign(away);
    return;
  }
  renderSignIn(notice);
}

function stopPolling(): void {
  window.clearTimeout(photoPoll);
  window.clearTimeout(modelPoll);
  photoPoll = modelPoll = undefined;
}

// --- the signed-in app ---------------------------------------------------------------------------------------------
function renderApp(): void {
  const signOutButton = h("button", { type: "button", class: "link" }, "Sign out");
  signOutButton.addEventListener("click", () => signOut());
  $("account").replaceChildren(h("span", {}, `Signed in as ${session?.user ?? ""}`), signOutButton);
  $("main").replaceChildren(guideSection(), photosSection(), trainSection(), generateSection(), accountSection());
  renderPhotos();
  void refreshPhotos();
  void refreshModel();
  void loadHistory(true);
}

function guideSection(): HTMLElement {
  const tips = h(
    "ul",
    { class: "tips" },
    h("li", {}, "One photo facing the camera, then turn your head: a profile from each side and the angles in between."),
    h("li", {}, "Different expressions: smiling, neutral, frowning."),
    h("li", {}, "Good, even light; your face sharp and large in the picture."),
    h("li", {}, "Only you in the picture: no other people, no sunglasses, no filters."),
  );
  const gallery = h("ul", { class: "examples", "aria-label": "Examples of good and bad photos" });
  EXAMPLES.forEach((example, index) => {
    const figure = h("li", { class: example.good ? "good" : "bad" });
    figure.innerHTML = drawExample(example.drawing, `example-blur-${index}`); // our own markup, no user text
    figure.append(h("span", { class: "verdict-mark" }, example.good ? "✓ Good: " : "✗ Avoid: ", example.caption));
    gallery.append(figure);
  });
  const details = h("details", { open: items.length === 0 }, h("summary", {}, "What to shoot"), tips, gallery);
  return h("section", { class: "card", "aria-labelledby": "guide-title" }, h("h2", { id: "guide-title" }, "1. Take 10 to 12 photos"), details);
}

function photosSection(): HTMLElement {
  const accept = [...PHOTO_TYPES, ".heic", ".heif"].join(",");
  const picker = h("input", { id: "add-photos", type: "file", multiple: true, accept, class: "visually-hidden" });
  const camera = h("input", { id: "take-photo", type: "file", accept: "image/*", capture: "user", class: "visually-hidden" });
  for (const input of [picker, camera]) {
    input.addEventListener("change", () => {
      const files = [...(input.files ?? [])];
      input.value = "";
      void addFiles(files);
    });
  }
  return h(
    "section",
    { class: "card", "aria-labelledby": "photos-title" },
    h("h2", { id: "photos-title" }, "2. Your photos"),
    h("p", { id: "photo-summary", class: "summary" }),
    h("p", { id: "coverage", class: "hint" }),
    h(
      "div",
      { class: "pickers" },
      picker,
      h("label", { for: "add-photos", class: "button" }, "Add photos"),
      camera,
      h("label", { for: "take-photo", class: "button secondary" }, "Take a photo"),
    ),
    h("p", { class: "hint" }, `JPEG, PNG, WebP or HEIC, up to ${Math.round(config.maxPhotoBytes / 1048576)} MB each.`),
    h("p", { id: "photos-error", class: "error", role: "alert" }),
    h("ul", { id: "photo-list", class: "photos", "aria-label": "Your photos" }),
  );
}

async function addFiles(files: File[]): Promise<void> {
  const fresh: { item: PhotoItem; file: File }[] = [];
  for (const file of files) {
    const problem = fileProblem(file, config.maxPhotoBytes);
    const item: PhotoItem = {
      key: crypto.randomUUID(),
      name: file.name,
      thumbnail: problem ? undefined : URL.createObjectURL(file),
      state: problem ? "not-sent" : "uploading",
      progress: 0,
      messages: problem ? [problem] : [],
      face: null,
    };
    items.push(item);
    if (problem) announce(`${file.name}: Refused. ${problem}`);
    else fresh.push({ item, file });
  }
  renderPhotos();
  if (!fresh.length) return;
  await guarded(async () => {
    const { uploads } = await api.uploadSlots(fresh.length);
    fresh.forEach(({ item }, index) => (item.photoId = uploads[index].photo_id));
    rememberNames();
    await Promise.all(
      fresh.map(async ({ item, file }, index) => {
        try {
          await uploadPhoto(uploads[index], file, contentType(file), (fraction) => {
            item.progress = fraction;
            renderPhoto(item);
          });
          item.state = "checking";
        } catch (error) {
          item.state = "failed";
          item.messages = [error instanceof Error ? error.message : String(error)];
        }
        renderPhoto(item);
      }),
    );
    schedulePhotoPoll(500);
  }, $("photos-error")).finally(() => {
    for (const { item } of fresh) {
      if (!item.photoId && item.state === "uploading") {
        item.state = "failed";
        item.messages = ["The upload could not start; try adding the photo again."];
        renderPhoto(item);
      }
    }
  });
}

function schedulePhotoPoll(delay = 1500): void {
  window.clearTimeout(photoPoll);
  if (!session) return;
  photoPoll = window.setTimeout(() => void refreshPhotos(), delay);
}

async function refreshPhotos(): Promise<void> {
  await guarded(async () => {
    const list = await api.photos();
    mergePhotos(list);
    if (items.some((i) => i.state === "checking" || i.state === "uploading")) schedulePhotoPoll();
  }, $("photos-error"));
}

function mergePhotos(list: PhotoList): void {
  const names = rememberedNames();
  const known = new Map(items.filter((i) => i.photoId).map((i) => [i.photoId, i]));
  for (const photo of list.photos) {
    let item = known.get(photo.photo_id);
    if (!item) {
      if (photo.status === "pending") continue; // an upload slot never used, from an earlier visit
      item = { key: photo.photo_id, photoId: photo.photo_id, name: names[photo.photo_id] ?? "Photo", state: "checking", progress: 1, messages: [], face: null };
      items.push(item);
    }
    if (photo.status === "pending" || item.state === "uploading") continue;
    const next: PhotoState = photo.status === "accepted" ? "accepted" : "refused";
    const changed = item.state !== next;
    item.state = next;
    item.messages = photo.messages;
    item.face = photo.face;
    item.facing = photo.facing;
    if (changed) announce(`${item.name}: ${next === "accepted" ? "Accepted" : `Refused. ${photo.messages.join(" ")}`}`);
  }
  const listed = new Set(list.photos.map((p) => p.photo_id));
  for (const item of items) {
    if (item.photoId && !listed.has(item.photoId) && (item.state === "accepted" || item.state === "refused")) {
      item.state = "failed";
      item.messages = ["This photo is no longer stored."];
    }
  }
  $("photo-summary").textContent = acceptedSummary(list.accepted, list.needed);
  const cover = list.coverage;
  $("coverage").textContent =
    list.accepted > 0
      ? `Facing: ${cover.front} front, ${cover.left} left, ${cover.right} right. ${cover.advice.join(" ")}`
      : "";
  renderPhotos();
  updateTrainButton(list.needed);
}

function renderPhotos(): void {
  const list = document.getElementById("photo-list");
  if (!list) return;
  list.replaceChildren(...items.map(photoElement));
}

function renderPhoto(item: PhotoItem): void {
  const old = document.querySelector(`[data-key="${item.key}"]`);
  if (old) old.replaceWith(photoElement(item));
}

function statusText(item: PhotoItem): string {
  switch (item.state) {
    case "uploading":
      return `Uploading ${Math.round(item.progress * 100)}%`;
    case "checking":
      return "Checking…";
    case "accepted":
      return item.facing ? `Accepted · facing ${item.facing}` : "Accepted";
    case "refused":
    case "not-sent":
      return "Refused";
    case "failed":
      return "Not uploaded";
  }
}

function photoElement(item: PhotoItem): HTMLElement {
  const frame = h("div", { class: "thumb" });
  if (item.thumbnail) {
    const image = h("img", { src: item.thumbnail, alt: `Your photo ${item.name}` });
    const placeBox = () => {
      if (!item.face) return;
      const style = faceBoxStyle(item.face, { width: image.naturalWidth, height: image.naturalHeight });
      if (!style) return;
      const box = h("div", { class: "face-box", "aria-hidden": "true" });
      Object.assign(box.style, style);
      frame.append(box);
    };
    image.addEventListener("load", placeBox);
    image.addEventListener("error", () => image.replaceWith(h("span", { class: "no-preview" }, "No preview in this browser")));
    frame.append(image);
  } else {
    frame.append(h("span", { class: "no-preview" }, item.state === "not-sent" ? "Not sent" : "No preview"));
  }
  const status = h("strong", { class: `status ${item.state}` }, statusText(item));
  const text = h("div", { class: "photo-text" }, h("span", { class: "name" }, item.name), status);
  if (item.state === "uploading") {
    text.append(h("progress", { max: 100, value: Math.round(item.progress * 100), "aria-label": `Upload of ${item.name}` }));
  }
  for (const message of item.messages) text.append(h("span", { class: "message" }, message));
  const remove = h("button", { type: "button", class: "link", "aria-label": `Delete ${item.name}` }, "Delete");
  remove.addEventListener("click", () => void deletePhoto(item));
  return h("li", { class: `photo ${item.state}`, "data-key": item.key }, frame, text, remove);
}

async function deletePhoto(item: PhotoItem): Promise<void> {
  await guarded(async () => {
    if (item.photoId && item.state !== "failed") await api.deletePhoto(item.photoId);
    items.splice(items.indexOf(item), 1);
    if (item.thumbnail) URL.revokeObjectURL(item.thumbnail);
    rememberNames();
    announce(`${item.name} deleted`);
    renderPhotos();
    await refreshPhotos();
  }, $("photos-error"));
}

// --- training ------------------------------------------------------------------------------------------------------
function trainSection(): HTMLElement {
  const button = h("button", { id: "train", type: "button", disabled: true }, "Train my avatar");
  button.addEventListener("click", () => void train());
  return h(
    "section",
    { class: "card", "aria-labelledby": "train-title" },
    h("h2", { id: "train-title" }, "3. Your model"),
    h("p", { id: "model-state", role: "status" }, "Add photos to start."),
    h("div", { id: "training" }),
    button,
    h("p", { id: "train-error", class: "error", role: "alert" }),
  );
}

function updateTrainButton(needed: number): void {
  const button = document.getElementById("train") as HTMLButtonElement | null;
  if (!button) return;
  const busy = lastModel != null && isTraining(lastModel);
  button.disabled = needed > 0 || busy;
  button.textContent = lastModel?.state === "FAILED" ? "Try again" : lastModel?.current_version ? "Train again" : "Train my avatar";
  button.setAttribute("aria-label", button.textContent === "Train my avatar" ? "Train my avatar" : `${button.textContent}: Train my avatar`);
}

async function train(): Promise<void> {
  if ("Notification" in window && Notification.permission === "default") void Notification.requestPermission();
  await guarded(async () => {
    await api.train(crypto.randomUUID());
    announce("Training started");
    await refreshModel();
  }, $("train-error"));
}

function scheduleModelPoll(delay = 2000): void {
  window.clearTimeout(modelPoll);
  if (!session) return;
  modelPoll = window.setTimeout(() => void refreshModel(), delay);
}

async function refreshModel(): Promise<void> {
  await guarded(async () => {
    const before = lastModel;
    const status = await api.model();
    lastModel = status;
    renderModel(status);
    const wasTraining = before != null && isTraining(before);
    if (wasTraining && !isTraining(status)) modelFinished(status);
    if (isTraining(status)) scheduleModelPoll();
    updateTrainButton(status.photos_needed);
  }, $("train-error"));
}

function renderModel(status: ModelStatus): void {
  const stateText: Record<ModelStatus["state"], string> = {
    COLLECTING: "No model yet: add photos, then train.",
    QUEUED: "Your training is queued.",
    TRAINING: "Your model is training. You can leave this page; we tell you when it is ready.",
    READY: "Your model is ready: create avatars below.",
    FAILED: "The last training failed.",
  };
  $("model-state").textContent = stateText[status.state];
  const place = $("training");
  place.replaceChildren();
  if (isTraining(status)) {
    const view = trainingView(status);
    const bar = h("div", {
      class: "bar",
      role: "progressbar",
      "aria-label": "Training progress",
      "aria-valuemin": 0,
      "aria-valuemax": 100,
      "aria-valuenow": view.percent ?? undefined,
      "aria-valuetext": view.percent == null ? view.label : `${view.percent}%: ${view.label}`,
    });
    const fill = h("div", { class: view.percent == null ? "fill indeterminate" : "fill" });
    fill.style.width = `${view.percent ?? 30}%`;
    bar.append(fill);
    place.append(bar, h("p", { class: "hint" }, view.label));
  } else if (status.job?.state === "FAILED" && status.job.failure_reason) {
    place.append(h("p", { class: "error" }, `Why: ${status.job.failure_reason}`));
  }
  const ready = status.current_version != null;
  const generate = document.getElementById("generate") as HTMLButtonElement | null;
  if (generate) generate.disabled = !ready;
  const hint = document.getElementById("generate-hint");
  if (hint) hint.textContent = ready ? "" : "Available once your model is trained.";
}

function modelFinished(status: ModelStatus): void {
  const ready = status.state === "READY";
  const text = ready ? "Your avatar model is ready." : `Training failed: ${status.job?.failure_reason ?? "unknown reason"}`;
  announce(text);
  if ("Notification" in window && Notification.permission === "granted" && document.hidden) {
    new Notification("Avatar", { body: text });
  }
}

// --- generating and browsing ---------------------------------------------------------------------------------------
function generateSection(): HTMLElement {
  const style = h("select", { id: "style", name: "style", "aria-describedby": "style-help" }, h("option", { value: "" }, "My own prompt"));
  const styleHelp = h("p", { id: "style-help", class: "hint" }, "Pick a style, or write your own prompt below.");
  const prompt = h("input", { id: "prompt", name: "prompt", maxlength: 480, "aria-describedby": "prompt-help", placeholder: "as an astronaut on the moon, oil painting" });
  void guarded(async () => {
    const catalog = await api.styles();
    for (const s of catalog.styles) styleNames.set(s.id, s.name);
    style.append(...catalog.styles.map((s) => h("option", { value: s.id }, s.name)));
    style.addEventListener("change", () => {
      const chosen = catalog.styles.find((s) => s.id === style.value);
      styleHelp.textContent = chosen ? `${chosen.description} (${chosen.preview})` : "Pick a style, or write your own prompt below.";
      prompt.disabled = Boolean(chosen);
    });
  });
  const count = h("select", { id: "count", name: "count" }, ...[1, 2, 3, 4].map((n) => h("option", { value: n }, String(n))));
  const button = h("button", { id: "generate", type: "submit", disabled: true }, "Generate");
  const results = h("ul", { id: "results", class: "gallery", "aria-label": "New avatars", "aria-live": "polite" });
  const error = h("p", { id: "generate-error", class: "error", role: "alert" });
  const form = h(
    "form",
    {},
    h("label", { for: "style" }, "Style"),
    style,
    styleHelp,
    h("label", { for: "prompt" }, "Prompt"),
    prompt,
    h("p", { id: "prompt-help", class: "hint" }, `Describe a scene with you in it. Write ${TOKEN} where you go ("${TOKEN} riding a horse"); if you leave it out, you are put at the start.`),
    h("label", { for: "count" }, "Images"),
    count,
    button,
    h("p", { id: "generate-hint", class: "hint" }),
    error,
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = withToken(prompt.value);
    const chosen = style.value;
    if (!chosen && !prompt.value.trim()) {
      error.textContent = "Write a prompt or pick a style.";
      prompt.focus();
      return;
    }
    button.disabled = true;
    button.textContent = "Generating…";
    results.setAttribute("aria-busy", "true");
    void guarded(async () => {
      const made = await api.generate(chosen ? { style: chosen } : { prompt: text }, Number(count.value));
      const name = chosen ? (style.selectedOptions[0]?.textContent ?? chosen) : text;
      results.replaceChildren(...made.images.map((image) => avatarElement({ ...image, prompt: chosen ? `you, ${name} style` : text })));
      const withheld = made.withheld ? ` ${made.withheld} withheld by the safety check (never stored).` : "";
      error.textContent = withheld.trim();
      announce(`${made.images.length} avatar${made.images.length === 1 ? "" : "s"} ready.${withheld}`);
      await loadHistory(true);
    }, error).finally(() => {
      button.disabled = false;
      button.textContent = "Generate";
      results.removeAttribute("aria-busy");
    });
  });
  const more = h("button", { id: "more", type: "button", class: "secondary", hidden: true }, "Show more");
  more.addEventListener("click", () => void loadHistory(false));
  return h(
    "section",
    { class: "card", "aria-labelledby": "generate-title" },
    h("h2", { id: "generate-title" }, "4. Create avatars"),
    form,
    results,
    h("h3", {}, "Your avatars"),
    h("p", { id: "history-empty", class: "hint" }),
    h("ul", { id: "history", class: "gallery", "aria-label": "Every avatar you made" }),
    more,
  );
}

function spoken(prompt: string): string {
  return prompt.split(TOKEN).join("you").trim();
}

// Style ids -> names, from the catalog (the history names a style by its id).
const styleNames = new Map<string, string>();

function avatarElement(avatar: { url: string; seed: number; prompt: string; likeness: number | null; face_found: boolean | null; created_at?: string; style?: string | null; starter_pack?: boolean }): HTMLElement {
  const name = `Avatar: ${spoken(avatar.prompt)} (seed ${avatar.seed})`;
  const style = avatar.style ? styleNames.get(avatar.style) ?? avatar.style : "";
  const made = avatar.starter_pack ? `Starter pack${style ? `: ${style}` : ""}` : style;
  const caption = [made, likenessText(avatar.likeness, avatar.face_found), avatar.created_at ? new Date(avatar.created_at).toLocaleString() : ""].filter(Boolean).join(" · ");
  return h(
    "li",
    {},
    h("figure", {},
      h("img", { src: avatar.url, alt: name, loading: "lazy" }),
      h("figcaption", {}, caption, " ", h("a", { href: avatar.url, download: `avatar-${avatar.seed}.png` }, "Download", h("span", { class: "visually-hidden" }, ` ${name}`))),
    ),
  );
}

async function loadHistory(first: boolean): Promise<void> {
  await guarded(async () => {
    const page = await api.history(first ? null : historyCursor);
    historyCursor = page.next;
    const list = $("history");
    const shown = page.avatars.map((a: HistoryAvatar) => avatarElement(a));
    if (first) list.replaceChildren(...shown);
    else list.append(...shown);
    ($("more") as HTMLButtonElement).hidden = !page.next;
    $("history-empty").textContent = list.children.length ? "" : "Nothing yet: your avatars appear here.";
  }, $("generate-error"));
}

// --- deleting the account ------------------------------------------------------------------------------------------
function accountSection(): HTMLElement {
  const confirm = h("button", { type: "button", class: "danger" }, "Delete everything");
  const cancel = h("button", { type: "button", class: "secondary" }, "Cancel");
  const dialog = h(
    "dialog",
    { "aria-labelledby": "confirm-title", "aria-describedby": "confirm-text" },
    h("h2", { id: "confirm-title" }, "Delete your account?"),
    h("p", { id: "confirm-text" }, "Your photos, your model and every avatar you made are deleted for good, and you are signed out."),
    h("div", { class: "actions" }, cancel, confirm),
  );
  const open = h("button", { type: "button", class: "danger" }, "Delete my account");
  const error = h("p", { class: "error", role: "alert" });
  open.addEventListener("click", () => dialog.showModal());
  cancel.addEventListener("click", () => dialog.close());
  confirm.addEventListener("click", () => {
    dialog.close();
    const photos = items.filter((i) => i.photoId).length;
    const models = lastModel?.current_version ?? 0;
    void guarded(async () => {
      await api.deleteAccount();
      items.splice(0, items.length);
      sessionStorage.removeItem(NAMES);
      signOut(
        `Your account is deleted: ${photos} photo${photos === 1 ? "" : "s"}, ${models} model version${models === 1 ? "" : "s"} and every avatar you made are being erased, and you are signed out.`,
      );
    }, error);
  });
  return h(
    "section",
    { class: "card", "aria-labelledby": "account-title" },
    h("h2", { id: "account-title" }, "Your data"),
    h("p", {}, "Deleting your account erases your photos, models and avatars."),
    open,
    dialog,
    error,
  );
}

// --- start ---------------------------------------------------------------------------------------------------------
async function start(): Promise<void> {
  try {
    config = await loadConfig();
  } catch (error) {
    $("main").replaceChildren(h("p", { class: "error", role: "alert" }, `The app cannot start: ${String(error)}`));
    return;
  }
  api = new Api(config.apiUrl, () => (session && session.expiresAt > Date.now() ? session.accessToken : null));
  const reference = document.getElementById("api-reference") as HTMLAnchorElement | null;
  if (reference) reference.href = config.apiReference;
  try {
    const back = await finishCognitoSignIn(config);
    if (back) saveSession(back);
  } catch (error) {
    renderSignIn(error instanceof Error ? error.message : String(error));
    return;
  }
  session = savedSession();
  if (session) renderApp();
  else renderSignIn();
}

window.addEventListener("unhandledrejection", (event) => {
  if (event.reason instanceof ApiError || event.reason instanceof SessionExpired) event.preventDefault();
});

void start();
