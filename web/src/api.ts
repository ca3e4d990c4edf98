/** The service's HTTP API, as the signed-in person calls it. */

import type { ModelStatus } from "./logic";

export class SessionExpired extends Error {}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface FaceBox {
  x: number;
  y: number;
  w: number;
  h: number;
}

export interface PhotoOut {
  photo_id: string;
  status: "pending" | "accepted" | "refused";
  reasons: string[];
  messages: string[];
  face: FaceBox | null;
  duplicate_of: string | null;
  facing: string | null;
}

export interface PhotoList {
  photos: PhotoOut[];
  accepted: number;
  needed: number;
  coverage: { front: number; left: number; right: number; advice: string[] };
}

export interface UploadSlot {
  photo_id: string;
  url: string;
  fields: Record<string, string>;
}

export interface AvatarOut {
  url: string;
  seed: number;
  likeness: number | null;
  face_found: boolean | null;
}

export interface HistoryAvatar extends AvatarOut {
  prompt: string;
  created_at: string;
  request_id: string;
  style: string | null;
  starter_pack: boolean;
}

export interface Generated {
  images: AvatarOut[];
  withheld: number;
  withheld_reason: string | null;
}

export interface StyleOut {
  id: string;
  name: string;
  description: string;
  preview: string;
  prompt: string;
}

export class Api {
  constructor(
    private readonly base: string,
    private readonly token: () => string | null,
  ) {}

  async call<T>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<T> {
    const token = this.token();
    if (!token) throw new SessionExpired("signed out");
    let answer: Response;
    try {
      answer = await fetch(this.base + path, {
        method,
        headers: {
          Authorization: `Bearer ${token}`,
          ...(body === undefined ? {} : { "Content-Type": "application/json" }),
          ...headers,
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, "network", "The service cannot be reached; check the connection and try again.");
    }
    if (answer.status === 401) throw new SessionExpired("the session expired");
    const text = await answer.text();
    const parsed = text ? JSON.parse(text) : null;
    if (!answer.ok) {
      const error = parsed?.error ?? {};
      throw new ApiError(answer.status, error.code ?? "error", error.message ?? parsed?.message ?? answer.statusText);
    }
    return parsed as T;
  }

  uploadSlots(count: number): Promise<{ uploads: UploadSlot[] }> {
    return this.call("POST", "/v1/photos", { count });
  }

  photos(): Promise<PhotoList> {
    return this.call("GET", "/v1/photos");
  }

  deletePhoto(photoId: string): Promise<null> {
    return this.call("DELETE", `/v1/photos/${encodeURIComponent(photoId)}`);
  }

  model(): Promise<ModelStatus> {
    return this.call("GET", "/v1/models/current");
  }

  train(idempotencyKey: string): Promise<{ job_id: string; state: string }> {
    return this.call("POST", "/v1/models", {}, { "Idempotency-Key": idempotencyKey });
  }

  generate(what: { prompt: string } | { style: string }, count: number): Promise<Generated> {
    return this.call("POST", "/v1/avatars", { ...what, num_images: count });
  }

  styles(): Promise<{ version: string; styles: StyleOut[] }> {
    return this.call("GET", "/v1/styles");
  }

  history(cursor: string | null): Promise<{ avatars: HistoryAvatar[]; next: string | null }> {
    const query = new URLSearchParams({ limit: "12", ...(cursor ? { cursor } : {}) });
    return this.call("GET", `/v1/avatars?${query}`);
  }

  deleteAccount(): Promise<{ state: string }> {
    return this.call("DELETE", "/v1/me");
  }
}

/** Send one photo to S3 through its presigned POST, reporting progress (0-1); resolves when S3 has it. */
export function uploadPhoto(
  slot: UploadSlot,
  file: Blob,
  contentType: string,
  onProgress: (fraction: number) => void,
): Promise<void> {
  const form = new FormData();
  for (const [name, value] of Object.entries(slot.fields)) form.append(name, value);
  form.append("Content-Type", contentType);
  form.append("file", file);
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open("POST", slot.url);
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) onProgress(event.loaded / event.total);
    };
    request.onload = () =>
      request.status < 300 ? resolve() : reject(new Error(`the upload was refused (HTTP ${request.status})`));
    request.onerror = () => reject(new Error("the upload failed; check the connection and try again"));
    request.send(form);
  });
}
