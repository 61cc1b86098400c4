// The benchmark's chart: one small SVG, three panels of bars (one per way of running), each with its target.
import { meets, type Report, TARGETS, type WayResult } from "./report.ts";

interface Panel {
  title: string;
  value: (r: WayResult) => number | undefined;
  label: (v: number) => string;
  /** The end of the scale; longer bars are cut there (their label says the value). */
  max: number;
  target: number;
  meets: (v: number) => boolean;
  targetLabel: string;
}

const PANELS: Panel[] = [
  {
    title: "Throughput, 20 streaming clients: gateway ÷ direct (higher is better)",
    value: (r) => r.throughput?.ratio,
    label: (v) => v.toFixed(2),
    max: 1,
    target: TARGETS.throughputRatio,
    meets: meets.throughputRatio,
    targetLabel: `target ≥ ${TARGETS.throughputRatio}`,
  },
  {
    title: "2,000-piece reply, streamed: gateway time ÷ direct (lower is better)",
    value: (r) => r.long?.streamed.ratio,
    label: (v) => `${v.toFixed(2)}×`,
    max: 3,
    target: TARGETS.longStreamedRatio,
    meets: meets.longStreamedRatio,
    targetLabel: `target ≤ ${TARGETS.longStreamedRatio}`,
  },
  {
    title: "Peak RSS with 1,000 concurrent streams (lower is better)",
    value: (r) => r.streams?.rssPeakMB,
    label: (v) => `${v.toFixed(0)} MB`,
    max: 400,
    target: TARGETS.peakRssMB,
    meets: meets.peakRssMB,
    targetLabel: `target < ${TARGETS.peakRssMB} MB`,
  },
];

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

/** Short names for the chart's label column. */
const shortName = (r: WayResult) =>
  r.name.replace(/`/g, "").replace("reference: lib/ behind a bare Bun.serve", "reference: lib/ only").replace(
    "reference: the I/O alone (Bun.serve, fetch)",
    "reference: I/O only",
  );

/** Renders the chart for a report. */
export function chart(report: Report): string {
  const W = 760;
  const labelW = 190;
  const barW = W - labelW - 24;
  const rowH = 20;
  const panels = PANELS.map((p) => ({
    p,
    rows: Object.values(report.runtimes).filter((r) => p.value(r) !== undefined),
  })).filter((x) => x.rows.length);
  const panelH = (n: number) => 30 + n * rowH + 18;
  const H = 12 + panels.reduce((h, x) => h + panelH(x.rows.length), 0) + 20;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, -apple-system, Segoe UI, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
  ];
  let y0 = 12;
  for (const { p, rows } of panels) {
    out.push(`<text x="8" y="${y0 + 12}" font-weight="600" fill="#222">${esc(p.title)}</text>`);
    const scale = (v: number) => (Math.min(v, p.max) / p.max) * barW;
    const top = y0 + 22;
    rows.forEach((r, j) => {
      const y = top + j * rowH;
      const v = p.value(r)!;
      const ok = p.meets(v);
      const w = scale(v);
      out.push(`<text x="${labelW - 8}" y="${y + 13}" text-anchor="end" fill="#333">${esc(shortName(r))}</text>`);
      out.push(`<rect x="${labelW}" y="${y + 3}" width="${barW}" height="${rowH - 6}" fill="#f1f3f5"/>`);
      out.push(
        `<rect x="${labelW}" y="${y + 3}" width="${w.toFixed(1)}" height="${rowH - 6}" fill="${
          ok ? "#2f9e44" : "#e8590c"
        }"/>`,
      );
      // The value goes after the bar, or inside it when the bar fills the scale.
      const inside = w > barW - 60;
      out.push(
        `<text x="${(inside ? labelW + w - 4 : labelW + w + 4).toFixed(1)}" y="${y + 13}" text-anchor="${
          inside ? "end" : "start"
        }" fill="${inside ? "#fff" : "#222"}">${esc(p.label(v))}</text>`,
      );
    });
    const tx = labelW + scale(p.target);
    const bottom = top + rows.length * rowH;
    out.push(
      `<line x1="${tx.toFixed(1)}" y1="${top}" x2="${
        tx.toFixed(1)
      }" y2="${bottom}" stroke="#222" stroke-dasharray="3,3"/>`,
    );
    out.push(
      `<text x="${tx.toFixed(1)}" y="${bottom + 11}" text-anchor="middle" font-size="10" fill="#555">${
        esc(p.targetLabel)
      }</text>`,
    );
    y0 += panelH(rows.length);
  }
  const m = report.machine;
  out.push(
    `<text x="8" y="${H - 8}" font-size="10" fill="#666">${
      esc(
        `npm run bench (${report.mode}) on ${m.cpus}; bun ${m.versions.bun}, deno ${m.versions.deno}, node ${m.versions.node}. Direct: a client doing the same work with the simulator itself.`,
      )
    }</text>`,
  );
  out.push("</svg>");
  return out.join("\n") + "\n";
}
