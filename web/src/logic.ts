/** The app's rules, free of the DOM, so they are unit-tested. */

export const TOKEN = "<<TOK>>";
export const PHOTO_TYPES = ["image/jpeg", "image/png", "image/webp", "image/heic", "image/heif"];
const SUFFIXES = [".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif"];

/** Why a chosen file is refused before uploading, or null when it may go. */
export function fileProblem(file: { name: string; size: number; type: string }, maxBytes: number): string | null {
  const name = file.name.toLowerCase();
  const known = PHOTO_TYPES.includes(file.type.toLowerCase()) || SUFFIXES.some((s) => name.endsWith(s));
  if (file.size === 0) return "The file is empty.";
  if (file.size > maxBytes) return `The file is ${megabytes(file.size)}; photos up to ${megabytes(maxBytes)} are taken.`;
  if (!known) return "Not a photo: choose a JPEG, PNG, WebP or HEIC file.";
  return null;
}

export function megabytes(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MB`;
}

/** The content type S3 is told for an upload (browsers leave HEIC's type empty on some systems). */
export function contentType(file: { name: string; type: string }): string {
  if (file.type.startsWith("image/")) return file.type;
  const name = file.name.toLowerCase();
  if (name.endsWith(".heic")) return "image/heic";
  if (name.endsWith(".heif")) return "image/heif";
  if (name.endsWith(".png")) return "image/png";
  if (name.endsWith(".webp")) return "image/webp";
  return "image/jpeg";
}

/** "7 of 10 photos accepted" (more than needed: "12 photos accepted, 10 needed"). */
export function acceptedSummary(accepted: number, needed: number): string {
  const target = accepted + needed;
  if (needed > 0) return `${accepted} of ${target} photos accepted`;
  return `${accepted} photos accepted: ready to train`;
}

/** The prompt as the API gets it: the identifier token where the person goes, at the start if they left it out. */
export function withToken(prompt: string): string {
  const trimmed = prompt.trim();
  if (trimmed.includes(TOKEN)) return trimmed;
  return trimmed ? `${TOKEN} ${trimmed}` : TOKEN;
}

/** "about 2 min left", "about 40 s left", "" when unknown. */
export function timeLeft(seconds: number | null | undefined): string {
  if (seconds == null || !Number.isFinite(seconds) || seconds < 0) return "";
  if (seconds < 60) return `about ${Math.max(1, Math.round(seconds))} s left`;
  return `about ${Math.round(seconds / 60)} min left`;
}

const PHASES: Record<string, string> = {
  preparing: "Preparing your face crops",
  class_images: "Making reference images",
  training: "Training your model",
  packaging: "Packaging your model",
  done: "Finishing",
};

export interface Progress {
  phase: string;
  step: number;
  total_steps: number;
  eta_seconds?: number | null;
}

export interface ModelStatus {
  state: "COLLECTING" | "QUEUED" | "TRAINING" | "READY" | "FAILED";
  current_version: number | null;
  accepted_photos: number;
  photos_needed: number;
  job: { job_id: string; state: string; failure_reason: string | null; progress: Progress | null } | null;
}

/** What the training bar shows: a label, and a percentage (null: indeterminate). */
export function trainingView(status: ModelStatus): { label: string; percent: number | null } {
  const job = status.job;
  if (status.state === "QUEUED" || (job && job.state === "QUEUED")) return { label: "Waiting for a GPU", percent: null };
  const progress = job?.progress;
  if (!progress) return { label: "Starting", percent: null };
  const phase = PHASES[progress.phase] ?? progress.phase;
  const percent =
    progress.total_steps > 0 ? Math.min(100, Math.round((100 * progress.step) / progress.total_steps)) : null;
  const left = timeLeft(progress.eta_seconds);
  return { label: left ? `${phase}, ${left}` : phase, percent };
}

/** Whether a training is in flight. The job's outcome is recorded a moment before the user's model follows it
 * (READY job, TRAINING model), so both must have settled before the page says it is over. */
export function isTraining(status: ModelStatus): boolean {
  const inFlight = (state: string | undefined) => state === "QUEUED" || state === "TRAINING";
  return inFlight(status.job?.state) || inFlight(status.state);
}

/** A face box as percentages of the photo, for an overlay on its thumbnail. */
export function faceBoxStyle(
  box: { x: number; y: number; w: number; h: number },
  natural: { width: number; height: number },
): { left: string; top: string; width: string; height: string } | null {
  if (!natural.width || !natural.height) return null;
  const pct = (value: number, whole: number) => `${((100 * value) / whole).toFixed(2)}%`;
  return {
    left: pct(box.x, natural.width),
    top: pct(box.y, natural.height),
    width: pct(box.w, natural.width),
    height: pct(box.h, natural.height),
  };
}

/** Likeness (0-1) in words for a person: "looks like you (78%)". */
export function likenessText(likeness: number | null | undefined, faceFound: boolean | null | undefined): string {
  if (faceFound === false) return "no face found";
  if (likeness == null) return "";
  const percent = Math.round(likeness * 100);
  return likeness >= 0.5 ? `looks like you (${percent}%)` : `less like you (${percent}%)`;
}
