//! SVG plots, written by hand (line charts need no plotting library): a run's timeline,
//! and several runs against connections or recipients.

use std::fmt::Write as _;
use std::path::Path;

use serde_json::Value;

use crate::options::PlotX;
use crate::report::Report;

const WIDTH: f64 = 920.0;
const PANEL_H: f64 = 260.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 200.0;
const TOP: f64 = 50.0;
const GAP: f64 = 70.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// Why a comparison plot could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// A results file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// A results file is not iolite-bench JSON.
    #[error("{path}: not iolite-bench results: {why}")]
    Format {
        /// The file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

/// One line.
#[derive(Clone, Debug)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// Stroke colour.
    pub color: &'static str,
    /// Dashed (a second statistic of the same run, such as p99 next to p50).
    pub dashed: bool,
    /// Points, sorted by x.
    pub points: Vec<(f64, f64)>,
}

/// One chart.
#[derive(Clone, Debug)]
pub struct Panel {
    /// Title above it.
    pub title: String,
    /// Under the x axis.
    pub x_label: String,
    /// Beside the y axis.
    pub y_label: String,
    /// Its lines.
    pub series: Vec<Series>,
    /// Start the x axis at 0 (time axes).
    pub x_from_zero: bool,
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round step near `range / 5`.
fn nice_step(range: f64) -> f64 {
    if range <= 0.0 || !range.is_finite() {
        return 1.0;
    }
    let raw = range / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let n = if f < 1.5 {
        1.0
    } else if f < 3.5 {
        2.0
    } else if f < 7.5 {
        5.0
    } else {
        10.0
    };
    n * mag
}

fn tick_label(v: f64) -> String {
    let a = v.abs();
    if a >= 1e9 {
        format!("{}G", trim(v / 1e9))
    } else if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e3 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_owned()
    }
}

/// Draws `p` with its top-left corner of the plotting area at (`x0`, `y0`).
fn panel(out: &mut String, x0: f64, y0: f64, w: f64, h: f64, p: &Panel) {
    let pts = p.series.iter().flat_map(|s| s.points.iter());
    let (mut xmin, mut xmax, mut ymax) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    for &(x, y) in pts {
        if x.is_finite() && y.is_finite() {
            xmin = xmin.min(x);
            xmax = xmax.max(x);
            ymax = ymax.max(y);
        }
    }
    if !xmin.is_finite() {
        (xmin, xmax) = (0.0, 1.0);
    }
    if p.x_from_zero {
        xmin = xmin.min(0.0);
    }
    // Sweeps over connections grow by factors: a log axis keeps 10 and 10,000 apart.
    let log_x = xmin > 0.0 && xmax / xmin >= 50.0;
    let fx = |x: f64| if log_x { x.log10() } else { x };
    let (lx0, mut lx1) = (fx(xmin), fx(xmax));
    if lx1 <= lx0 {
        lx1 = lx0 + 1.0;
    }
    let ystep = nice_step(if ymax > 0.0 { ymax } else { 1.0 });
    let ytop = ((ymax / ystep).ceil().max(1.0)) * ystep;
    let sx = |x: f64| x0 + (fx(x) - lx0) / (lx1 - lx0) * w;
    let sy = |y: f64| y0 + h - y / ytop * h;
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="15" font-weight="bold">{}</text>"#,
        x0,
        y0 - 14.0,
        esc(&p.title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{x0:.1}" y="{y0:.1}" width="{w:.1}" height="{h:.1}" fill="none" stroke="#888"/>"##
    );
    // y grid and labels
    let mut y = 0.0;
    while y <= ytop + ystep * 0.01 {
        let py = sy(y);
        let _ = writeln!(
            out,
            r##"<line x1="{x0:.1}" y1="{py:.1}" x2="{:.1}" y2="{py:.1}" stroke="#e4e4e4"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
            x0 + w,
            x0 - 6.0,
            py + 4.0,
            tick_label(y)
        );
        y += ystep;
    }
    // x ticks
    let xticks: Vec<f64> = if log_x {
        let (a, b) = (lx0.floor() as i32, lx1.ceil() as i32);
        (a..=b)
            .map(|e| 10f64.powi(e))
            .filter(|&v| v >= xmin * 0.999 && v <= xmax * 1.001)
            .collect()
    } else {
        let step = nice_step(lx1 - lx0);
        let mut v = (lx0 / step).ceil() * step;
        let mut t = Vec::new();
        while v <= lx1 + step * 0.001 {
            t.push(v);
            v += step;
        }
        t
    };
    for v in xticks {
        let px = sx(v);
        let _ = writeln!(
            out,
            r##"<line x1="{px:.1}" y1="{:.1}" x2="{px:.1}" y2="{:.1}" stroke="#888"/><text x="{px:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"##,
            y0 + h,
            y0 + h + 5.0,
            y0 + h + 18.0,
            tick_label(v)
        );
    }
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="12" text-anchor="middle">{}</text>"#,
        x0 + w / 2.0,
        y0 + h + 38.0,
        esc(&p.x_label)
    );
    let _ = writeln!(
        out,
        r#"<text transform="translate({:.1},{:.1}) rotate(-90)" font-size="12" text-anchor="middle">{}</text>"#,
        x0 - 58.0,
        y0 + h / 2.0,
        esc(&p.y_label)
    );
    for (k, s) in p.series.iter().enumerate() {
        let pts: Vec<String> = s
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite() && (!log_x || *x > 0.0))
            .map(|&(x, y)| format!("{:.1},{:.1}", sx(x), sy(y)))
            .collect();
        let dash = if s.dashed {
            r#" stroke-dasharray="6,4""#
        } else {
            ""
        };
        if pts.len() > 1 {
            let _ = writeln!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
                pts.join(" "),
                s.color
            );
        }
        if pts.len() <= 30 {
            for p in &pts {
                if let Some((cx, cy)) = p.split_once(',') {
                    let _ = writeln!(
                        out,
                        r#"<circle cx="{cx}" cy="{cy}" r="3" fill="{}"/>"#,
                        s.color
                    );
                }
            }
        }
        let ly = y0 + 12.0 + k as f64 * 18.0;
        let lx = x0 + w + 16.0;
        let _ = writeln!(
            out,
            r#"<line x1="{lx:.1}" y1="{ly:.1}" x2="{:.1}" y2="{ly:.1}" stroke="{}" stroke-width="2"{dash}/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"#,
            lx + 24.0,
            s.color,
            lx + 30.0,
            ly + 4.0,
            esc(&s.name)
        );
    }
}

/// An SVG document of stacked panels.
pub fn svg(title: &str, panels: &[Panel]) -> String {
    let w = WIDTH - LEFT - RIGHT;
    let height = TOP + panels.len() as f64 * (PANEL_H + GAP) + 10.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="{LEFT}" y="24" font-size="17" font-weight="bold">{}</text>"#,
        esc(title)
    );
    for (i, p) in panels.iter().enumerate() {
        let y0 = TOP + 20.0 + i as f64 * (PANEL_H + GAP);
        panel(&mut out, LEFT, y0, w, PANEL_H - 20.0, p);
    }
    out.push_str("</svg>\n");
    out
}

/// Throughput and latency of one run, second by second.
pub fn timeline(r: &Report) -> String {
    let pts = |f: &dyn Fn(&crate::harness::Sample) -> Option<f64>| -> Vec<(f64, f64)> {
        r.timeline
            .iter()
            .filter_map(|s| f(s).map(|v| (s.t_s, v)))
            .collect()
    };
    let title = format!(
        "{} {} over {}{}",
        r.scenario,
        r.url,
        r.protocol,
        r.label
            .as_ref()
            .map_or(String::new(), |l| format!(" [{l}]"))
    );
    let throughput = Panel {
        title: "Throughput".into(),
        x_label: "seconds into the measured phase".into(),
        y_label: "per second".into(),
        x_from_zero: true,
        series: vec![
            Series {
                name: "received/s".into(),
                color: COLORS[0],
                dashed: false,
                points: pts(&|s| Some(s.received_per_s)),
            },
            Series {
                name: "sent/s".into(),
                color: COLORS[1],
                dashed: true,
                points: pts(&|s| Some(s.sent_per_s)),
            },
        ],
    };
    let latency = Panel {
        title: "Latency".into(),
        x_label: "seconds into the measured phase".into(),
        y_label: "milliseconds".into(),
        x_from_zero: true,
        series: vec![
            Series {
                name: "p50".into(),
                color: COLORS[2],
                dashed: false,
                points: pts(&|s| s.p50_us.map(|v| v / 1000.0)),
            },
            Series {
                name: "p99".into(),
                color: COLORS[3],
                dashed: true,
                points: pts(&|s| s.p99_us.map(|v| v / 1000.0)),
            },
        ],
    };
    svg(&title, &[throughput, latency])
}

/// Several runs (JSON results) against connections or recipients; one series per label
/// (or file name), three panels: throughput, latency, server CPU per delivery.
pub fn compare(files: &[impl AsRef<Path>], x: PlotX) -> Result<String, PlotError> {
    let mut runs: Vec<(String, f64, Value)> = Vec::new();
    for f in files {
        let f = f.as_ref();
        let path = f.display().to_string();
        let text = std::fs::read_to_string(f).map_err(|source| PlotError::Read {
            path: path.clone(),
            source,
        })?;
        let v: Value = serde_json::from_str(&text).map_err(|e| PlotError::Format {
            path: path.clone(),
            why: e.to_string(),
        })?;
        if !v
            .get("tool")
            .and_then(Value::as_str)
            .is_some_and(|t| t.starts_with("iolite-bench"))
        {
            return Err(PlotError::Format {
                path,
                why: "no \"tool\": \"iolite-bench ...\" field".into(),
            });
        }
        let xv = match x {
            PlotX::Connections => v.pointer("/connections/opened").and_then(Value::as_f64),
            PlotX::Recipients => v.get("recipients_per_message").and_then(Value::as_f64),
        };
        let Some(xv) = xv else {
            return Err(PlotError::Format {
                path,
                why: format!("no value for the x axis ({x:?})"),
            });
        };
        let label = v
            .get("label")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| {
                f.file_stem()
                    .map_or("run".into(), |s| s.to_string_lossy().into_owned())
            });
        runs.push((label, xv, v));
    }
    let mut labels: Vec<String> = Vec::new();
    for (l, _, _) in &runs {
        if !labels.contains(l) {
            labels.push(l.clone());
        }
    }
    let series = |f: &dyn Fn(&Value) -> Option<f64>, suffix: &str, dashed: bool| -> Vec<Series> {
        labels
            .iter()
            .enumerate()
            .map(|(i, l)| {
                let mut points: Vec<(f64, f64)> = runs
                    .iter()
                    .filter(|(rl, _, _)| rl == l)
                    .filter_map(|(_, xv, v)| f(v).map(|y| (*xv, y)))
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                Series {
                    name: format!("{l}{suffix}"),
                    color: COLORS[i % COLORS.len()],
                    dashed,
                    points,
                }
            })
            .collect()
    };
    let x_label = match x {
        PlotX::Connections => "connections",
        PlotX::Recipients => "recipients per message",
    };
    let num = |p: &'static str| move |v: &Value| v.pointer(p).and_then(Value::as_f64);
    let mut lat = series(
        &|v| num("/latency_us/p50")(v).map(|u| u / 1000.0),
        " p50",
        false,
    );
    lat.extend(series(
        &|v| num("/latency_us/p99")(v).map(|u| u / 1000.0),
        " p99",
        true,
    ));
    let cpu = |v: &Value| {
        num("/server/cpu_us_per_delivery")(v).or_else(|| num("/server/cpu_us_per_message")(v))
    };
    let scenario = runs
        .first()
        .and_then(|(_, _, v)| v.get("scenario").and_then(Value::as_str))
        .unwrap_or("runs")
        .to_owned();
    let panels = [
        Panel {
            title: "Throughput (received per second)".into(),
            x_label: x_label.into(),
            y_label: "per second".into(),
            series: series(&num("/received_per_s"), "", false),
            x_from_zero: false,
        },
        Panel {
            title: "Latency (solid p50, dashed p99)".into(),
            x_label: x_label.into(),
            y_label: "milliseconds".into(),
            series: lat,
            x_from_zero: false,
        },
        Panel {
            title: "Server CPU per delivery (or per message)".into(),
            x_label: x_label.into(),
            y_label: "CPU µs".into(),
            series: series(&cpu, "", false),
            x_from_zero: false,
        },
    ];
    Ok(svg(&format!("iolite-bench {scenario}"), &panels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_and_labels() {
        assert_eq!(nice_step(100.0), 20.0);
        assert_eq!(nice_step(7.0), 1.0);
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(tick_label(1500.0), "1.5k");
        assert_eq!(tick_label(2_000_000.0), "2M");
        assert_eq!(tick_label(0.25), "0.25");
        assert_eq!(esc("a<b & \"c\""), "a&lt;b &amp; &quot;c&quot;");
    }

    #[test]
    fn empty_panels_still_draw() {
        let s = svg(
            "t",
            &[Panel {
                title: "x".into(),
                x_label: "x".into(),
                y_label: "y".into(),
                series: vec![],
                x_from_zero: true,
            }],
        );
        assert!(s.contains("<svg") && s.ends_with("</svg>\n"));
        assert!(!s.contains("NaN") && !s.contains("inf"));
    }
}
