import { describe, expect, it } from "vitest";

import {
  acceptedSummary,
  contentType,
  faceBoxStyle,
  fileProblem,
  isTraining,
  likenessText,
  timeLeft,
  trainingView,
  withToken,
  type ModelStatus,
} from "../src/logic";

const MB = 1024 * 1024;

describe("files chosen are checked before uploading", () => {
  it("takes photos of the known types up to the limit", () => {
    expect(fileProblem({ name: "me.jpg", size: 2 * MB, type: "image/jpeg" }, 15 * MB)).toBeNull();
    expect(fileProblem({ name: "IMG_0001.HEIC", size: 2 * MB, type: "" }, 15 * MB)).toBeNull(); // no type on some systems
  });
  it("refuses big, empty and non-photo files with a reason", () => {
    expect(fileProblem({ name: "big.jpg", size: 16 * MB, type: "image/jpeg" }, 15 * MB)).toBe(
      "The file is 16.0 MB; photos up to 15.0 MB are taken.",
    );
    expect(fileProblem({ name: "empty.png", size: 0, type: "image/png" }, 15 * MB)).toMatch(/empty/);
    expect(fileProblem({ name: "notes.txt", size: 10, type: "text/plain" }, 15 * MB)).toMatch(/Not a photo/);
  });
  it("names the content type S3 is told, from the name when the browser gives none", () => {
    expect(contentType({ name: "a.HEIC", type: "" })).toBe("image/heic");
    expect(contentType({ name: "a.webp", type: "image/webp" })).toBe("image/webp");
    expect(contentType({ name: "a", type: "" })).toBe("image/jpeg");
  });
});

describe("what the person reads", () => {
  it("counts accepted photos against what a training needs", () => {
    expect(acceptedSummary(7, 3)).toBe("7 of 10 photos accepted");
    expect(acceptedSummary(0, 10)).toBe("0 of 10 photos accepted");
    expect(acceptedSummary(12, 0)).toBe("12 photos accepted: ready to train");
  });
  it("puts the identifier token at the start unless the prompt has it", () => {
    expect(withToken("  as an astronaut ")).toBe("<<TOK>> as an astronaut");
    expect(withToken("a painting of <<TOK>> in Paris")).toBe("a painting of <<TOK>> in Paris");
    expect(withToken("")).toBe("<<TOK>>");
  });
  it("says time left in seconds, then minutes, and nothing when unknown", () => {
    expect(timeLeft(0.2)).toBe("about 1 s left");
    expect(timeLeft(42)).toBe("about 42 s left");
    expect(timeLeft(150)).toBe("about 3 min left");
    expect(timeLeft(null)).toBe("");
    expect(timeLeft(Number.NaN)).toBe("");
  });
  it("describes likeness, and a missing face", () => {
    expect(likenessText(0.78, true)).toBe("looks like you (78%)");
    expect(likenessText(0.31, true)).toBe("less like you (31%)");
    expect(likenessText(null, false)).toBe("no face found");
    expect(likenessText(null, null)).toBe("");
  });
});

describe("training progress", () => {
  const status = (job: ModelStatus["job"], state: ModelStatus["state"] = "TRAINING"): ModelStatus => ({
    state,
    current_version: null,
    accepted_photos: 10,
    photos_needed: 0,
    job,
  });
  it("shows the phase, its share done and time left", () => {
    const view = trainingView(
      status({ job_id: "j", state: "TRAINING", failure_reason: null, progress: { phase: "training", step: 30, total_steps: 120, eta_seconds: 95 } }),
    );
    expect(view).toEqual({ label: "Training your model, about 2 min left", percent: 25 });
  });
  it("is over only when both the job and the model have settled", () => {
    const job = (state: "TRAINING" | "READY" | "FAILED") => ({ job_id: "j", state, failure_reason: null, progress: null });
    expect(isTraining(status(job("TRAINING")))).toBe(true);
    // The notifier records the job's outcome, then the model follows it: in between, still training
    expect(isTraining(status(job("READY"), "TRAINING"))).toBe(true);
    expect(isTraining(status(job("READY"), "READY"))).toBe(false);
    expect(isTraining(status(job("FAILED"), "FAILED"))).toBe(false);
    expect(isTraining(status(null, "COLLECTING"))).toBe(false);
  });
  it("is indeterminate while queued or before the first report", () => {
    expect(trainingView(status({ job_id: "j", state: "QUEUED", failure_reason: null, progress: null }, "QUEUED")).percent).toBeNull();
    expect(trainingView(status({ job_id: "j", state: "TRAINING", failure_reason: null, progress: null })).label).toBe("Starting");
  });
});

describe("face boxes", () => {
  it("are placed as shares of the upright photo", () => {
    expect(faceBoxStyle({ x: 100, y: 50, w: 200, h: 250 }, { width: 1000, height: 500 })).toEqual({
      left: "10.00%",
      top: "10.00%",
      width: "20.00%",
      height: "50.00%",
    });
    expect(faceBoxStyle({ x: 1, y: 1, w: 1, h: 1 }, { width: 0, height: 0 })).toBeNull();
  });
});
