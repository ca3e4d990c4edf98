/** The capture guide's pictures, drawn here as SVG (no downloaded assets): good shots and the usual mistakes. */

export interface FaceDrawing {
  turn?: number; // -1 (profile to the left) .. 1 (profile to the right)
  mouth?: "smile" | "neutral" | "frown";
  dark?: boolean;
  blurred?: boolean;
  sunglasses?: boolean;
  second?: boolean;
  tiny?: boolean;
}

export interface Example {
  caption: string;
  good: boolean;
  drawing: FaceDrawing;
}

export const EXAMPLES: Example[] = [
  { caption: "Facing the camera", good: true, drawing: {} },
  { caption: "Head turned left", good: true, drawing: { turn: -0.5 } },
  { caption: "Head turned right", good: true, drawing: { turn: 0.5 } },
  { caption: "Profile", good: true, drawing: { turn: 1 } },
  { caption: "Smiling", good: true, drawing: { mouth: "smile" } },
  { caption: "Frowning", good: true, drawing: { mouth: "frown", turn: -0.25 } },
  { caption: "Someone else in the picture", good: false, drawing: { second: true } },
  { caption: "Sunglasses or filters", good: false, drawing: { sunglasses: true } },
  { caption: "Too dark", good: false, drawing: { dark: true } },
  { caption: "Blurred", good: false, drawing: { blurred: true } },
  { caption: "Face too small", good: false, drawing: { tiny: true } },
];

function head(cx: number, cy: number, scale: number, d: FaceDrawing): string {
  const turn = Math.max(-1, Math.min(1, d.turn ?? 0));
  const r = 30 * scale;
  const shift = turn * 14 * scale;
  const eyeGap = 11 * scale * (1 - Math.abs(turn) * 0.55);
  const eyes =
    Math.abs(turn) > 0.9
      ? `<circle cx="${cx + shift}" cy="${cy - 6 * scale}" r="${2.6 * scale}" fill="#222"/>`
      : `<circle cx="${cx + shift - eyeGap}" cy="${cy - 6 * scale}" r="${2.6 * scale}" fill="#222"/>` +
        `<circle cx="${cx + shift + eyeGap}" cy="${cy - 6 * scale}" r="${2.6 * scale}" fill="#222"/>`;
  const glasses = d.sunglasses
    ? `<rect x="${cx + shift - 20 * scale}" y="${cy - 11 * scale}" width="${40 * scale}" height="${10 * scale}" rx="${4 * scale}" fill="#111"/>`
    : "";
  const mouthY = cy + 13 * scale;
  const bend = d.mouth === "smile" ? 7 : d.mouth === "frown" ? -6 : 0;
  const mx = cx + shift * 1.1;
  const mouth = `<path d="M ${mx - 9 * scale} ${mouthY} Q ${mx} ${mouthY + bend * scale} ${mx + 9 * scale} ${mouthY}" stroke="#7a2f2f" stroke-width="${2.2 * scale}" fill="none" stroke-linecap="round"/>`;
  const nose = `<path d="M ${cx + shift * 1.3} ${cy - 2 * scale} l ${turn * 6 * scale} ${8 * scale} l ${-3 * scale} 0" stroke="#a0674b" stroke-width="${1.6 * scale}" fill="none"/>`;
  const hair = `<path d="M ${cx - r} ${cy - 4 * scale} Q ${cx} ${cy - r * 1.7} ${cx + r} ${cy - 4 * scale} Q ${cx + shift} ${cy - r * 1.05} ${cx - r} ${cy - 4 * scale}" fill="#4a3426"/>`;
  return (
    `<ellipse cx="${cx}" cy="${cy}" rx="${r * (1 - Math.abs(turn) * 0.12)}" ry="${r * 1.2}" fill="#f0c9a6"/>` +
    hair + eyes + glasses + nose + mouth
  );
}

/** One example as an SVG element's markup (decorative: its caption is the text next to it). */
export function drawExample(d: FaceDrawing, id: string): string {
  const scale = d.tiny ? 0.35 : 1;
  const body = `<path d="M 30 150 Q 80 ${d.tiny ? 122 : 100} 130 150 Z" fill="#5b7db1"/>`;
  let people = head(80, d.tiny ? 95 : 72, scale, d) + (d.tiny ? "" : body);
  if (d.second) people = head(122, 80, 0.75, { turn: -0.3 }) + people;
  const filter = d.blurred ? ` filter="url(#${id})"` : "";
  const shade = d.dark ? `<rect width="160" height="150" fill="#000" opacity="0.72"/>` : "";
  return (
    `<svg viewBox="0 0 160 150" width="160" height="150" aria-hidden="true" focusable="false">` +
    (d.blurred ? `<defs><filter id="${id}"><feGaussianBlur stdDeviation="3.2"/></filter></defs>` : "") +
    `<rect width="160" height="150" fill="#dfe9f3"/><g${filter}>${people}</g>${shade}</svg>`
  );
}
