// A two-line time chart on a canvas: appends per second (left scale) and live connections
// (right scale) over a sliding window. Small on purpose: no library, no build step.

/** The smallest of 1, 2, 5 × 10^k at or above `value`, so the axes read in round numbers. */
export function niceCeiling(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

export class TimeChart {
  /** @param windowMs how much history the chart shows */
  constructor(canvas, windowMs) {
    this.canvas = canvas;
    this.windowMs = windowMs;
    this.samples = []; // { t, appends, connections }
  }

  add(sample) {
    this.samples.push(sample);
    const oldest = sample.t - this.windowMs;
    while (this.samples.length && this.samples[0].t < oldest) this.samples.shift();
    this.draw();
    const appends = sample.appends.toFixed(1);
    this.canvas.setAttribute("aria-label", `Now ${appends} appends per second and ${sample.connections} live connections`);
  }

  draw() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    if (canvas.width !== Math.round(width * ratio)) canvas.width = Math.round(width * ratio);
    if (canvas.height !== Math.round(height * ratio)) canvas.height = Math.round(height * ratio);
    const g = canvas.getContext("2d");
    g.setTransform(ratio, 0, 0, ratio, 0, 0);
    g.clearRect(0, 0, width, height);

    const style = getComputedStyle(document.documentElement);
    const colors = {
      text: style.getPropertyValue("--muted").trim(),
      line: style.getPropertyValue("--line").trim(),
      appends: style.getPropertyValue("--accent").trim(),
      connections: style.getPropertyValue("--good").trim(),
    };
    const box = { left: 48, right: width - 40, top: 10, bottom: height - 22 };
    const now = this.samples.length ? this.samples[this.samples.length - 1].t : Date.now();
    const x = (t) => box.right - ((now - t) / this.windowMs) * (box.right - box.left);
    const appendsMax = niceCeiling(Math.max(...this.samples.map((s) => s.appends), 1));
    // Connections are whole: a scale of four whole, round steps.
    const connectionsMax = 4 * Math.ceil(niceCeiling(Math.max(...this.samples.map((s) => s.connections), 1) / 4));

    g.font = "11px system-ui, sans-serif";
    g.lineWidth = 1;
    g.strokeStyle = colors.line;
    g.fillStyle = colors.text;
    for (let i = 0; i <= 4; i++) {
      const y = box.bottom - (i / 4) * (box.bottom - box.top);
      g.beginPath();
      g.moveTo(box.left, y);
      g.lineTo(box.right, y);
      g.stroke();
      g.textAlign = "right";
      g.fillText(formatAxis((appendsMax * i) / 4), box.left - 6, y + 4);
      g.textAlign = "left";
      g.fillText(formatAxis((connectionsMax * i) / 4), box.right + 6, y + 4);
    }
    g.textAlign = "center";
    for (let minutes = 0; minutes * 60000 <= this.windowMs; minutes++) {
      g.fillText(minutes === 0 ? "now" : `-${minutes} min`, x(now - minutes * 60000), height - 6);
    }
    this.line(g, x, box, appendsMax, "appends", colors.appends);
    this.line(g, x, box, connectionsMax, "connections", colors.connections);
  }

  line(g, x, box, max, field, color) {
    if (this.samples.length < 1) return;
    const y = (sample) => box.bottom - (sample[field] / max) * (box.bottom - box.top);
    g.strokeStyle = color;
    g.fillStyle = color;
    g.lineWidth = 2;
    g.beginPath();
    this.samples.forEach((sample, index) => {
      if (index === 0) g.moveTo(x(sample.t), y(sample));
      else g.lineTo(x(sample.t), y(sample));
    });
    g.stroke();
    // The latest value as a dot, so the first sample shows before there is a line.
    const last = this.samples[this.samples.length - 1];
    g.beginPath();
    g.arc(x(last.t), y(last), 3, 0, 2 * Math.PI);
    g.fill();
  }
}

function formatAxis(value) {
  if (value >= 1e6) return `${+(value / 1e6).toFixed(1)}M`;
  if (value >= 1e3) return `${+(value / 1e3).toFixed(1)}k`;
  return `${+value.toFixed(2)}`;
}
