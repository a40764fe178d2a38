//! The classical detector: no learned weights, so it runs everywhere.
//!
//! Pipeline (see `shared/DETECTION.md`): coarse LPS grid → spinal canal candidates per axial slice
//! linked by dynamic programming → vertebral body centroids anterior to the canal → smoothed 3-D
//! centreline with a local frame → straightened reformation at 0.5 mm → discs by dynamic
//! programming under a smooth-height prior → endplates per column → six keypoints mapped back to
//! patient space → labels from ribs and the lumbosacral junction → confounder checks (cement,
//! metal, ring artefacts, Schmorl nodes).

use crate::{
    artefacts, body_axis, canal, carina,
    centreline::{self, Centreline},
    config::ClassicalConfig,
    cut_body, endplates, geom,
    grid::{self, Grid, VolumeSampler},
    labels::{self, BodySpan},
    lateral,
    ring_correction::RingCorrection,
    segment,
    straighten::{self, Straightened},
    Detector,
};
use spinescreen_proto::{
    detection::CentrelinePoint, DetectedVertebra, Detection, HuVolume, Keypoints, Reason,
    ReasonCode, StudyStatus, VertebraFlag, VertebraLevel, SCHEMA_VERSION,
};
use std::collections::HashMap;

/// Classical detector (canal tracking, straightened reformation, intensity profiles).
#[derive(Debug, Clone, Default)]
pub struct ClassicalDetector {
    cfg: ClassicalConfig,
}

impl ClassicalDetector {
    /// A detector with the given tunables.
    pub fn new(cfg: ClassicalConfig) -> Self {
        Self { cfg }
    }

    /// The tunables in use.
    pub fn config(&self) -> &ClassicalConfig {
        &self.cfg
    }
}

/// A detector's outcome as a [`Detection`] stamped with the detector's name: a failure to trace
/// the spine becomes an abstention carrying its reason.
pub(crate) fn named_detection(detector: String, outcome: Result<Detection, Reason>) -> Detection {
    match outcome {
        Ok(d) => Detection { detector, ..d },
        Err(reason) => Detection {
            schema_version: SCHEMA_VERSION,
            status: StudyStatus::Abstained,
            reason: Some(reason),
            detector,
            vertebrae: vec![],
            centreline: vec![],
            notes: vec![],
            spine_region: None,
        },
    }
}

impl Detector for ClassicalDetector {
    fn name(&self) -> String {
        format!("classical/{}", env!("CARGO_PKG_VERSION"))
    }

    fn detect(&self, volume: &HuVolume) -> Detection {
        named_detection(self.name(), analyse(volume, &self.cfg))
    }
}

fn abstain(code: &str, text: impl Into<String>) -> Reason {
    Reason::new(code, text)
}

/// One measured body before naming.
struct Body {
    ep: endplates::BodyEndplates,
    s_center: f64,
    /// Index of the disc above it in the chain.
    disc: usize,
}

/// How far (mm) above a dense body's top its streaks may still cross the rib cut.
const RIB_STREAK_REACH_MM: f64 = 5.0;

/// How far (mm) beyond a body's keypoints a corrected ring still counts as crossing it.
const RING_MARGIN_MM: f64 = 3.0;

/// Run the classical pipeline (ring artefacts corrected first); `Err` is an abstention with no
/// usable spine at all.
pub fn analyse(volume: &HuVolume, cfg: &ClassicalConfig) -> Result<Detection, Reason> {
    with_rings_corrected(volume, cfg, |v| analyse_corrected(v, cfg))
}

/// Run `detect` on `volume` with its ring artefacts about the isocentre corrected, when it has
/// any: the rings are named in the notes and every body a corrected ring crosses is flagged
/// [`VertebraFlag::RingCorrected`]. Every detector goes through here, so a ring is never measured as
/// an endplate whichever found the spine.
pub(crate) fn with_rings_corrected(
    volume: &HuVolume,
    cfg: &ClassicalConfig,
    detect: impl FnOnce(&HuVolume) -> Result<Detection, Reason>,
) -> Result<Detection, Reason> {
    if let Some(reason) = slices_too_thick(volume) {
        return Err(reason);
    }
    let rings = RingCorrection::estimate(volume, cfg.ring_correction_min_hu);
    let corrected = rings.as_ref().map(|r| r.apply(volume));
    let mut det = detect(corrected.as_ref().unwrap_or(volume))?;
    if let Some(r) = rings {
        det.notes.insert(0, r.note());
        for v in &mut det.vertebrae {
            let k = &v.keypoints_mm;
            let points = [
                v.center_mm,
                k.superior_anterior,
                k.superior_posterior,
                k.inferior_anterior,
                k.inferior_posterior,
            ];
            if r.crosses(volume, &points, RING_MARGIN_MM) {
                v.flags.push(VertebraFlag::RingCorrected);
            }
        }
    }
    Ok(det)
}

/// Thickest slice spacing (mm) at which vertebrae are graded. Genant grades rest on height
/// ratios of 20–25 %: on a 20 mm thoracic body that is 4–5 mm, and at 5 mm slices an endplate is
/// placed only to about half a slice (±2.5 mm) on each side, so a normal body can read 25 %
/// short. Routine 3–3.75 mm reconstructions are still graded.
pub const MAX_GRADED_SLICE_MM: f64 = 4.0;

/// The study's slices, when too thick to grade (see [`MAX_GRADED_SLICE_MM`]).
fn slices_too_thick(volume: &HuVolume) -> Option<Reason> {
    let slice = volume.header.spacing_mm[2].abs();
    (slice > MAX_GRADED_SLICE_MM).then(|| {
        abstain(
            ReasonCode::SLICES_TOO_THICK,
            format!(
                "slices {slice:.1} mm apart: vertebral heights cannot be measured to the \
                 precision a Genant grade needs (at most {MAX_GRADED_SLICE_MM:.1} mm); ask for a \
                 thin-slice reconstruction of the series"
            ),
        )
    })
}

/// [`analyse`] on a volume whose ring artefacts are corrected.
fn analyse_corrected(volume: &HuVolume, cfg: &ClassicalConfig) -> Result<Detection, Reason> {
    let grid = grid::coarse_grid(volume, cfg.coarse_mm).ok_or_else(|| {
        abstain(
            ReasonCode::NO_SPINE,
            "volume is empty or too large to resample",
        )
    })?;
    let cands: Vec<canal::CanalCandidate> = (0..grid.dims[2])
        .flat_map(|k| canal::candidates(&grid, k, cfg))
        .collect();
    let track = canal::track(&grid, &cands, cfg)
        .ok_or_else(|| abstain(ReasonCode::NO_SPINE, "no spinal canal found"))?;
    let traced = track.points.len() as f64 * grid.spacing;
    if traced < cfg.min_track_mm {
        return Err(abstain(
            ReasonCode::NO_SPINE,
            format!("spinal canal traced over only {traced:.0} mm"),
        ));
    }
    if track.longest_gap_mm > cfg.abstain_gap_mm {
        return Err(abstain(
            ReasonCode::SPINE_NOT_TRACEABLE,
            format!(
                "spinal canal lost over {:.0} mm; the spine cannot be traced reliably",
                track.longest_gap_mm
            ),
        ));
    }
    let cl = centreline::build(&grid, &track, cfg).ok_or_else(|| {
        abstain(
            ReasonCode::NO_SPINE,
            "no vertebral bodies anterior to the canal",
        )
    })?;
    measure_and_name(volume, &grid, &track, &cl, traced, cfg)
}

/// Half width of the narrow band the endplates are read from: the configured band, but never
/// narrower than one in-plane pixel (a narrower band on coarse pixels only adds noise).
fn endplate_band_mm(volume: &HuVolume, cfg: &ClassicalConfig) -> f64 {
    let pixel = volume.header.spacing_mm[0]
        .abs()
        .max(volume.header.spacing_mm[1].abs())
        .clamp(0.3, 10.0);
    cfg.endplate_lateral_half_mm.max(pixel)
}

/// From a traced centreline on: straightened reformation, discs, endplates, names, confounder
/// flags and the abstention rules. Shared by the classical and the ONNX detector (whose model
/// provides the track); `track` gives the canal (or an estimate of it) per coarse slice.
pub fn measure_and_name(
    volume: &HuVolume,
    grid: &Grid,
    track: &canal::CanalTrack,
    cl: &Centreline,
    traced: f64,
    cfg: &ClassicalConfig,
) -> Result<Detection, Reason> {
    let sampler = VolumeSampler::new(volume)
        .ok_or_else(|| abstain(ReasonCode::NO_SPINE, "voxels not in standard layout"))?;
    let img = straighten::straighten(
        &sampler,
        cl,
        cfg.straight_step_mm,
        0.5,
        (-45.0, 45.0),
        (cfg.lateral_half_mm, endplate_band_mm(volume, cfg)),
    );
    let slice = volume.header.spacing_mm[2].abs().clamp(0.3, 10.0);
    let edge_bias = cfg.edge_bias_per_slice_mm * slice;
    let (discs, bodies) = chosen_disc_reading(&img, edge_bias, cfg);
    if bodies.is_empty() {
        return Err(abstain(
            ReasonCode::TOO_FEW_VERTEBRAE,
            "no vertebral body with both endplates found",
        ));
    }
    let mut notes = vec![format!(
        "spine traced over {traced:.0} mm; {} bodies measured between {} discs",
        bodies.len(),
        discs.len()
    )];
    // Naming: every level between the chain's discs takes a name, measured or not, so an
    // unmeasured body neither shifts its neighbours' names nor goes unreported.
    let slots = level_slots(&discs, &bodies);
    let spans: Vec<BodySpan> = slots.iter().map(|s| s.span).collect();
    // The bodies beyond the chain's ends: complete ones join the measured bodies, cut ones are
    // reported apart (named, not graded).
    let (cranial_end, caudal_end) = end_bodies(volume, &img, cl, &discs, &bodies, edge_bias, cfg);
    let naming = name_levels(
        grid,
        track,
        cl,
        &bodies,
        &spans,
        (&cranial_end, &caudal_end),
        cfg,
    );
    notes.extend(naming.notes.iter().cloned());
    // Build vertebrae with flags.
    let t1 = VertebraLevel::T1.index() as isize;
    let l5 = VertebraLevel::L5.index() as isize;
    let mut ring_cache: HashMap<usize, Vec<artefacts::Ring>> = HashMap::new();
    let mut vertebrae = Vec::new();
    let (mut n_ring, mut n_metal, mut dropped) = (0usize, 0usize, Vec::new());
    let first_li = naming.label_index.first().copied().unwrap_or(isize::MIN);
    let last_li = naming.label_index.last().copied().unwrap_or(isize::MIN);
    let mut measured: Vec<(&endplates::BodyEndplates, isize)> = Vec::new();
    if let Some(EndBody::Complete(ep)) = &cranial_end {
        measured.push((ep, first_li - 1));
    }
    measured.extend(
        slots
            .iter()
            .zip(&naming.label_index)
            .filter_map(|(slot, &li)| slot.body.map(|b| (&bodies[b].ep, li))),
    );
    if let Some(EndBody::Complete(ep)) = &caudal_end {
        measured.push((ep, last_li + 1));
    }
    for (ep, li) in measured {
        if li < t1 || li > l5 {
            if li >= 0 && (li as usize) < VertebraLevel::ALL.len() {
                dropped.push(VertebraLevel::ALL[li as usize].as_str());
            }
            continue;
        }
        let label = VertebraLevel::ALL[li as usize];
        let mut v = vertebra(cl, ep, label);
        recentre_laterally(&sampler, cl, ep, &mut v);
        let flags = body_flags(
            volume,
            grid,
            cl,
            ep,
            &v,
            naming.uncertain,
            (&mut ring_cache, &mut notes),
            cfg,
        );
        n_metal += usize::from(flags.contains(&VertebraFlag::Hardware));
        n_ring += usize::from(flags.contains(&VertebraFlag::RingArtifact));
        let edge = (ep.edge_hu / 200.0).clamp(0.3, 1.0);
        v.confidence = (naming.confidence * edge * ep.found_fraction.sqrt()).clamp(0.0, 1.0);
        v.flags = flags;
        vertebrae.push(v);
    }
    add_unassessed(
        cl,
        &slots,
        &naming,
        (&cranial_end, &caudal_end),
        &mut vertebrae,
        &mut notes,
    );
    if !dropped.is_empty() {
        notes.push(format!(
            "bodies outside T1–L5 not reported: {}",
            dropped.join(", ")
        ));
    }
    let centreline = sample_centreline(cl, 1.0);
    let n = vertebrae.len();
    let n_gradable = vertebrae
        .iter()
        .filter(|v| !v.flags.contains(&VertebraFlag::NotGradable))
        .count();
    let mut det = Detection {
        schema_version: SCHEMA_VERSION,
        status: StudyStatus::Ok,
        reason: None,
        detector: String::new(),
        vertebrae,
        centreline,
        notes,
        spine_region: None,
    };
    if let Some(reason) = declined(n, n_gradable, n_ring, n_metal) {
        det.status = StudyStatus::Abstained;
        det.reason = Some(reason);
    }
    Ok(det)
}

/// The levels reported without grading, in place among `vertebrae` (sorted cranial → caudal):
/// levels between the chain's discs whose endplates were not traced, and the bodies cut by the
/// scan's edges; each kind explained in a note.
fn add_unassessed(
    cl: &Centreline,
    slots: &[LevelSlot],
    naming: &labels::Naming,
    (cranial_end, caudal_end): (&Option<EndBody>, &Option<EndBody>),
    vertebrae: &mut Vec<DetectedVertebra>,
    notes: &mut Vec<String>,
) {
    let t1 = VertebraLevel::T1.index() as isize;
    let l5 = VertebraLevel::L5.index() as isize;
    let first_li = naming.label_index.first().copied().unwrap_or(isize::MIN);
    let last_li = naming.label_index.last().copied().unwrap_or(isize::MIN);
    let mut unmeasured = Vec::new();
    for (slot, &li) in slots.iter().zip(&naming.label_index) {
        if slot.body.is_some() || li < t1 || li > l5 {
            continue;
        }
        let label = VertebraLevel::ALL[li as usize];
        unmeasured.push(label.as_str());
        vertebrae.push(unmeasured_vertebra(cl, slot, label, naming));
    }
    vertebrae.sort_by(|a, b| {
        cl.project(a.center_mm)
            .0
            .total_cmp(&cl.project(b.center_mm).0)
    });
    if !unmeasured.is_empty() {
        notes.push(format!(
            "between the measured bodies, endplates not traced: {} (not assessable)",
            unmeasured.join(", ")
        ));
    }
    if let Some(EndBody::Cut(cut)) = &cranial_end {
        if let Some(v) = cut_vertebra(cl, cut, first_li - 1, (t1, l5), naming) {
            notes.push(format!(
                "{} partially imaged at the top of the scan: not graded",
                v.label
            ));
            vertebrae.insert(0, v);
        }
    }
    if let Some(EndBody::Cut(cut)) = &caudal_end {
        if let Some(v) = cut_vertebra(cl, cut, last_li + 1, (t1, l5), naming) {
            notes.push(format!(
                "{} partially imaged at the bottom of the scan: not graded",
                v.label
            ));
            vertebrae.push(v);
        }
    }
}

/// Why a study with `n` vertebrae reported (`n_gradable` gradable, `n_ring` crossed by an
/// uncorrected ring, `n_metal` beside metal) is declined, if it is.
fn declined(n: usize, n_gradable: usize, n_ring: usize, n_metal: usize) -> Option<Reason> {
    if n == 0 {
        Some(abstain(
            ReasonCode::TOO_FEW_VERTEBRAE,
            "no vertebra between T1 and L5 could be measured",
        ))
    } else if n_gradable < MIN_ASSESSED_LEVELS {
        Some(abstain(
            ReasonCode::TOO_FEW_VERTEBRAE,
            format!("only {n_gradable} of {n} vertebrae in view could be assessed"),
        ))
    } else if 2 * n_ring > n {
        Some(abstain(
            ReasonCode::RING_ARTIFACTS,
            format!("ring artefacts cross {n_ring} of {n} vertebral bodies"),
        ))
    } else if 2 * n_metal > n {
        Some(abstain(
            ReasonCode::HARDWARE,
            format!("metal hardware at {n_metal} of {n} vertebrae"),
        ))
    } else {
        None
    }
}

/// Two readings of the discs (dark, and dark or bright); the one that explains clearly more
/// vertebral bodies wins.
fn chosen_disc_reading(
    img: &Straightened,
    edge_bias: f64,
    cfg: &ClassicalConfig,
) -> (Vec<f64>, Vec<Body>) {
    let dark = disc_chain(img, segment::DiscReading::Dark, edge_bias, cfg);
    let either = disc_chain(img, segment::DiscReading::DarkOrBright, edge_bias, cfg);
    tracing::debug!(
        "disc readings: dark {} bodies, dark or bright {} bodies",
        dark.1.len(),
        either.1.len()
    );
    if either.1.len() >= dark.1.len() + BRIGHT_READING_MIN_GAIN
        && (dark.1.len() as f64) < BRIGHT_READING_MAX_DARK_SHARE * either.1.len() as f64
    {
        either
    } else {
        dark
    }
}

/// Name the levels (`spans`, cranial → caudal) from the ribs, the sacrum and what the end bodies
/// show beyond the chain.
fn name_levels(
    grid: &Grid,
    track: &canal::CanalTrack,
    cl: &Centreline,
    bodies: &[Body],
    spans: &[BodySpan],
    ends: (&Option<EndBody>, &Option<EndBody>),
    cfg: &ClassicalConfig,
) -> labels::Naming {
    // Ribs do not descend into the pelvis: bone beyond the cut that comes closest to the spine
    // more than a body below the last measured one is an iliac crest.
    let last = spans
        .last()
        .map(|b| b.s_center + b.height)
        .unwrap_or(f64::INFINITY);
    let rib_search = labels::find_ribs(grid, track, cl, cfg);
    let (ribs, stubs): (Vec<labels::Rib>, Vec<labels::Rib>) = rib_search
        .ribs
        .into_iter()
        .filter(|r| r.s <= last)
        .partition(|r| r.length >= cfg.rib_min_length_mm);
    // Bodies carrying cement or metal, from the disc above to their bottom: their streaks are
    // not ribs.
    let dense: Vec<(f64, f64)> = bodies
        .iter()
        .zip(spans)
        .filter(|(b, _)| b.ep.max_hu > cfg.cement_hu)
        .map(|(_, sp)| (sp.s_top - RIB_STREAK_REACH_MM, sp.s_top + sp.height))
        .collect();
    let ribs = labels::drop_streaks(&ribs, &dense);
    let sacrum = find_sacrum(grid, cl, spans, &ribs, cfg);
    // Either end body can show that the level beyond has no rib.
    let (cranial_end, caudal_end) = ends;
    let beyond = labels::SeenBeyond {
        above: matches!(cranial_end, Some(EndBody::Complete(_))),
        below: match &caudal_end {
            Some(EndBody::Complete(_)) => true,
            Some(EndBody::Cut(c)) => {
                // Its rib, cut short by the scan's edge, may still show as a stub.
                let top = c.s_endplate.iter().sum::<f64>() / 3.0;
                let stub = stubs
                    .iter()
                    .any(|r| (top - labels::RIB_ABOVE_TOP_MM..=c.s_edge).contains(&r.s));
                // A whole level may lie unmeasured between the chain's last body and the cut
                // one: then the cut body is not the level below, and shows nothing of it.
                let adjacent = spans.last().is_none_or(|last| is_next_level(last, top));
                c.s_edge - top >= RIB_REGION_IN_VIEW_MM && !stub && adjacent
            }
            None => false,
        },
    };
    if tracing::enabled!(tracing::Level::DEBUG) {
        let describe = |e: &Option<EndBody>| match e {
            Some(EndBody::Complete(_)) => "complete".to_string(),
            Some(EndBody::Cut(c)) => format!(
                "cut (near endplate {:.0}, edge {:.0})",
                c.s_endplate.iter().sum::<f64>() / 3.0,
                c.s_edge
            ),
            None => "none".to_string(),
        };
        tracing::debug!(
            "DBG end bodies: cranial {}, caudal {}; seen beyond {beyond:?}; stubs {:?}",
            describe(cranial_end),
            describe(caudal_end),
            stubs
                .iter()
                .map(|r| format!("{:.0}:{:.0}:{}", r.s, r.length, r.side))
                .collect::<Vec<_>>()
        );
    }
    let carina = carina::find(grid, track).map(|p| labels::level_of(cl, p));
    tracing::debug!("DBG carina at {carina:?}");
    labels::name(
        spans,
        &ribs,
        &rib_search.unresolved,
        sacrum,
        beyond,
        carina,
        cfg,
    )
}

/// The flags of one measured body (`v`, from endplates `ep`), with a note for each that needs
/// explaining.
#[allow(clippy::too_many_arguments)]
fn body_flags(
    volume: &HuVolume,
    grid: &Grid,
    cl: &Centreline,
    ep: &endplates::BodyEndplates,
    v: &DetectedVertebra,
    label_uncertain: bool,
    (ring_cache, notes): (&mut HashMap<usize, Vec<artefacts::Ring>>, &mut Vec<String>),
    cfg: &ClassicalConfig,
) -> Vec<VertebraFlag> {
    let mut flags = Vec::new();
    if label_uncertain {
        flags.push(VertebraFlag::LabelUncertain);
    }
    if ep.schmorl {
        flags.push(VertebraFlag::SchmorlNode);
    }
    if ep.max_hu > cfg.cement_hu {
        flags.push(VertebraFlag::Cement);
        flags.push(VertebraFlag::NotGradable);
    }
    if metal_near(grid, cl, ep, cfg) {
        flags.push(VertebraFlag::Hardware);
        if !flags.contains(&VertebraFlag::NotGradable) {
            flags.push(VertebraFlag::NotGradable);
        }
    }
    if ring_crosses(volume, v, ep, cfg, ring_cache) {
        flags.push(VertebraFlag::RingArtifact);
        if !flags.contains(&VertebraFlag::NotGradable) {
            flags.push(VertebraFlag::NotGradable);
        }
    }
    if let Some(h) = implausible_heights(&v.keypoints_mm, cfg) {
        flags.push(VertebraFlag::ImplausibleShape);
        if !flags.contains(&VertebraFlag::NotGradable) {
            flags.push(VertebraFlag::NotGradable);
        }
        notes.push(format!(
            "{}: endplates not traced reliably (heights {:.1} / {:.1} / {:.1} mm): not graded",
            v.label, h[0], h[1], h[2]
        ));
    }
    flags
}

/// How much of a body cut by the scan's lower edge (mm below its superior endplate) must be in
/// view for its lack of a rib to count. The lower ribs reach the cut far below their heads: on
/// the real chest CT the 12th crosses it 13 mm below its body's centre, about 25 mm below the
/// body's top, and the population phantom's 10th–12th fall as steeply. With less in view, a
/// cut T10 or T11 whose rib runs below the scan's edge reads rib-free and the lowest rib seen
/// is taken for the 12th (population set: seven studies named two or three levels too high).
const RIB_REGION_IN_VIEW_MM: f64 = 25.0;

/// Largest gap between the chain's last body and a body cut by the scan's lower edge (superior
/// endplate below inferior endplate), as a fraction of the last body's height, for the cut body
/// to be the next level: a disc is at most about half a body high. Beyond it a level was missed
/// in between (population seed 5006: T11 missed, the cut T12 read as a rib-free L1 and every
/// name moved two levels), so the cut body says nothing about the last rib.
const CUT_BODY_MAX_GAP: f64 = 0.6;

/// Fewest vertebrae that must be gradable for the study to be called: with fewer, a negative
/// conclusion would rest on too little of the spine, so the study is declined.
const MIN_ASSESSED_LEVELS: usize = 3;

/// One level between two discs of the chain: the body measured there, or none.
struct LevelSlot {
    span: BodySpan,
    /// Index into the measured bodies.
    body: Option<usize>,
    /// Arc lengths of the discs above and below (for an unmeasured level, its share of the
    /// interval).
    s_range: (f64, f64),
}

/// Every level along the disc chain, cranial → caudal. An interval with no measured body takes
/// as many levels as the chain's typical pitch fits into it (at least one), each standing for a
/// vertebra in view whose endplates were not traced.
fn level_slots(discs: &[f64], bodies: &[Body]) -> Vec<LevelSlot> {
    let mut pitches: Vec<f64> = bodies
        .iter()
        .filter_map(|b| Some(discs.get(b.disc + 1)? - discs.get(b.disc)?))
        .collect();
    let typical = if pitches.is_empty() {
        let mut all: Vec<f64> = discs.windows(2).map(|w| w[1] - w[0]).collect();
        straighten::median(&mut all)
    } else {
        straighten::median(&mut pitches)
    }
    .max(1.0);
    let mut slots = Vec::new();
    for (i, w) in discs.windows(2).enumerate() {
        if let Some(b) = bodies.iter().position(|b| b.disc == i) {
            let body = &bodies[b];
            slots.push(LevelSlot {
                span: BodySpan {
                    s_center: body.s_center,
                    height: mean_height(&body.ep),
                    s_top: body.ep.s_sup.iter().copied().fold(f64::INFINITY, f64::min),
                },
                body: Some(b),
                s_range: (w[0], w[1]),
            });
            continue;
        }
        let k = ((w[1] - w[0]) / typical).round().max(1.0) as usize;
        let step = (w[1] - w[0]) / k as f64;
        for j in 0..k {
            let (a, z) = (w[0] + j as f64 * step, w[0] + (j + 1) as f64 * step);
            slots.push(LevelSlot {
                span: BodySpan {
                    s_center: 0.5 * (a + z),
                    height: 0.8 * step,
                    s_top: a + 0.1 * step,
                },
                body: None,
                s_range: (a, z),
            });
        }
    }
    slots
}

/// A vertebra in view whose endplates were not traced: named, placed between its discs, flagged
/// [`VertebraFlag::EndplatesNotTraced`] and `not_gradable`, so the report names it as not assessable
/// instead of leaving a silent gap.
fn unmeasured_vertebra(
    cl: &Centreline,
    slot: &LevelSlot,
    label: VertebraLevel,
    naming: &labels::Naming,
) -> DetectedVertebra {
    let (a, z) = slot.s_range;
    let inset = 0.1 * (z - a);
    let (sup, inf) = (a + inset, z - inset);
    let p = |s: f64, u: f64| straighten::to_patient(cl, s, u);
    let kp = Keypoints {
        superior_posterior: p(sup, -UNMEASURED_HALF_DEPTH_MM),
        superior_middle: p(sup, 0.0),
        superior_anterior: p(sup, UNMEASURED_HALF_DEPTH_MM),
        inferior_posterior: p(inf, -UNMEASURED_HALF_DEPTH_MM),
        inferior_middle: p(inf, 0.0),
        inferior_anterior: p(inf, UNMEASURED_HALF_DEPTH_MM),
    };
    let f = cl.frame_at(0.5 * (a + z));
    let mut flags = vec![VertebraFlag::EndplatesNotTraced, VertebraFlag::NotGradable];
    if naming.uncertain {
        flags.insert(0, VertebraFlag::LabelUncertain);
    }
    DetectedVertebra {
        label,
        center_mm: p(0.5 * (a + z), 0.0),
        keypoints_mm: kp,
        anterior_dir: f.a,
        cranial_dir: f.t,
        confidence: (0.3 * naming.confidence).clamp(0.0, 1.0),
        flags,
    }
}

/// Half depth (mm) at which an unmeasured vertebra's nominal keypoints are placed.
const UNMEASURED_HALF_DEPTH_MM: f64 = 10.0;

/// Bodies more that the dark-or-bright reading of the discs must measure than the dark one
/// before it is taken: on phantoms and thick lumbar discs the two agree or the dark one wins,
/// on a real chest CT whose thoracic discs read bright the dark chain sits on the bodies' middles
/// and measures few of them.
const BRIGHT_READING_MIN_GAIN: usize = 2;

/// Largest share of the dark-or-bright reading's bodies that the dark reading may measure for
/// the dark-or-bright one still to be taken: it must explain a different spine, not the same
/// spine with a body or two more (on phantoms a bright endplate can add a body by splitting one,
/// and a severe fracture was lost that way).
const BRIGHT_READING_MAX_DARK_SHARE: f64 = 0.75;

/// The disc chain under one reading (re-phased) and the bodies measured between its discs.
fn disc_chain(
    img: &Straightened,
    reading: segment::DiscReading,
    edge_bias: f64,
    cfg: &ClassicalConfig,
) -> (Vec<f64>, Vec<Body>) {
    let discs = segment::discs_read(img, cfg, reading);
    tracing::debug!(
        "{reading:?} discs {:?}",
        discs
            .iter()
            .map(|d| format!("{:.0}", d.s))
            .collect::<Vec<_>>()
    );
    let discs = rephase(img, discs.iter().map(|d| d.s).collect(), edge_bias, cfg);
    let mut bodies = Vec::new();
    for (disc, w) in discs.windows(2).enumerate() {
        if let Some(ep) = endplates::measure(img, w[0], w[1], edge_bias, cfg) {
            bodies.push(Body {
                s_center: 0.25 * (ep.s_sup[1] + ep.s_inf[1] + ep.s_sup[0] + ep.s_inf[2]),
                ep,
                disc,
            });
        }
    }
    (discs, bodies)
}

/// Repair a disc chain mis-phased onto mid-body dips (dark osteoporotic interiors): where an
/// interval turns out to hold a disc with its two endplates, that disc joins the chain and the
/// chain's dips on both sides of it leave. A chain disc beside only one such interval stays
/// unless it lies closer than 0.6 × the chain's median pitch to the inserted disc (then it is
/// the dip that ends the mis-phased run).
fn rephase(img: &Straightened, chain: Vec<f64>, edge_bias: f64, cfg: &ClassicalConfig) -> Vec<f64> {
    if chain.len() < 2 {
        return chain;
    }
    let mut pitches: Vec<f64> = chain.windows(2).map(|w| w[1] - w[0]).collect();
    let typical = straighten::median(&mut pitches);
    // A gap of two bodies also has a disc at its centre; `split_long` handles those.
    let inner: Vec<Option<f64>> = chain
        .windows(2)
        .map(|w| {
            if w[1] - w[0] > 1.4 * typical {
                return None;
            }
            match endplates::measure_or_disc(img, w[0], w[1], edge_bias, cfg) {
                endplates::Measured::Disc(c) => Some(c),
                _ => None,
            }
        })
        .collect();
    // Mis-phasing runs over several bodies; a lone disc-like interval is something else (a
    // calcified disc between two bodies of one pitch) and is left alone.
    let inner: Vec<Option<f64>> = (0..inner.len())
        .map(|k| {
            let run =
                (k > 0 && inner[k - 1].is_some()) || inner.get(k + 1).is_some_and(Option::is_some);
            inner[k].filter(|_| run)
        })
        .collect();
    if inner.iter().all(Option::is_none) {
        return split_long(img, chain, typical, edge_bias, cfg);
    }
    let mut out = Vec::with_capacity(chain.len() + inner.len());
    for (k, &d) in chain.iter().enumerate() {
        let before = k.checked_sub(1).and_then(|j| inner[j]);
        let after = inner.get(k).copied().flatten();
        let keep = match (before, after) {
            (Some(_), Some(_)) => false,
            (Some(c), None) | (None, Some(c)) => (d - c).abs() >= 0.6 * typical,
            (None, None) => true,
        };
        if keep {
            out.push(d);
        }
        if let Some(c) = after {
            out.push(c);
        }
    }
    tracing::debug!("re-phased discs {:?}", out);
    split_long(img, out, typical, edge_bias, cfg)
}

/// Where a mis-phased run meets a well-phased one, the chain can be left with a gap of two
/// bodies that measures as neither. Split such a gap (over 1.6 × the typical pitch) at the
/// disc both of whose flanking bodies measure, placed midway between their facing endplates.
fn split_long(
    img: &Straightened,
    mut discs: Vec<f64>,
    typical: f64,
    edge_bias: f64,
    cfg: &ClassicalConfig,
) -> Vec<f64> {
    let mut k = 0;
    while k + 1 < discs.len() {
        let (a, b) = (discs[k], discs[k + 1]);
        let len = b - a;
        if len < 1.6 * typical || endplates::measure(img, a, b, edge_bias, cfg).is_some() {
            k += 1;
            continue;
        }
        let mut best: Option<(f64, f64)> = None;
        // Each part must be a plausible single pitch.
        let (lo, hi) = (
            (a + 0.6 * typical).max(b - 1.4 * typical),
            (a + 1.4 * typical).min(b - 0.6 * typical),
        );
        let mut s = lo;
        while s <= hi {
            if let (Some(up), Some(down)) = (
                endplates::measure(img, a, s, edge_bias, cfg),
                endplates::measure(img, s, b, edge_bias, cfg),
            ) {
                let gap_mid =
                    0.5 * (up.s_inf.iter().sum::<f64>() + down.s_sup.iter().sum::<f64>()) / 3.0;
                let off = (s - gap_mid).abs();
                if best.is_none_or(|(o, _)| off < o) {
                    best = Some((off, gap_mid));
                }
            }
            s += 1.0;
        }
        match best {
            Some((off, mid))
                if off < 3.0
                    && endplates::measure(img, a, mid, edge_bias, cfg).is_some()
                    && endplates::measure(img, mid, b, edge_bias, cfg).is_some() =>
            {
                tracing::debug!("split gap {a:.1}-{b:.1} at {mid:.1}");
                discs.insert(k + 1, mid);
                k += 2;
            }
            _ => k += 1,
        }
    }
    discs
}

fn mean_height(ep: &endplates::BodyEndplates) -> f64 {
    (0..3).map(|c| ep.s_inf[c] - ep.s_sup[c]).sum::<f64>() / 3.0
}

/// The lumbosacral junction: S1 is the first of the last bodies (or the level one pitch below the
/// last measured body, where S1 is in view but not measured: the sacrum has no S1/S2 disc to
/// bound it) whose sides are bone (the sacral alae, at both sides beside the body) while the body
/// above it has psoas at its sides; no rib may be attached less than 20 mm above it. Returns the
/// index of S1 among `spans`, `spans.len()` for the unmeasured level below the last.
fn find_sacrum(
    g: &Grid,
    cl: &Centreline,
    spans: &[BodySpan],
    ribs: &[labels::Rib],
    cfg: &ClassicalConfig,
) -> Option<usize> {
    let n = spans.len();
    let lowest_rib_s = ribs
        .iter()
        .filter(|r| r.length >= cfg.rib_min_length_mm)
        .map(|r| r.s)
        .fold(f64::NEG_INFINITY, f64::max);
    let ala = |s: f64| labels::lateral_bone_fraction(g, cl, s, cfg.sacrum_ala_hu);
    // Lateral bone at the level of body j; for j = n the most bony level about one pitch below
    // the last body (the lumbosacral disc is wedge-shaped, so its pitch varies), where the curve
    // reaches far enough below it.
    let level_and_bone = |j: usize| -> Option<(f64, f64)> {
        if j < n {
            return Some((spans[j].s_center, ala(spans[j].s_center)));
        }
        let last = spans.last()?;
        let lo = last.s_center + 0.7 * last.height;
        let hi = (last.s_center + 1.5 * last.height).min(cl.length());
        if hi < lo + 0.3 * last.height {
            return None;
        }
        let mut best: Option<(f64, f64)> = None;
        let mut s = lo;
        while s <= hi {
            let f = ala(s);
            if best.is_none_or(|(_, b)| f > b) {
                best = Some((s, f));
            }
            s += 1.0;
        }
        best
    };
    (n.saturating_sub(3).max(1)..=n).find(|&j| {
        let Some((s, bone)) = level_and_bone(j) else {
            return false;
        };
        s > lowest_rib_s + 20.0 && is_lumbosacral_step(ala(spans[j - 1].s_center), bone, cfg)
    })
}

/// Whether the lateral bone fractions ([`labels::lateral_bone_fraction`]) of two consecutive
/// levels read as L5 (`above`: psoas, or iliac crests beside a low-seated L5) over S1 (`bone`:
/// the sacral alae).
fn is_lumbosacral_step(above: f64, bone: f64, cfg: &ClassicalConfig) -> bool {
    bone >= cfg.sacrum_min_ala_fraction
        && above <= cfg.sacrum_max_lumbar_fraction
        && bone - above >= cfg.sacrum_min_ala_contrast
}

/// Whether a body cut by the scan's lower edge, its superior endplate at `cut_top`, is the level
/// right below the chain's `last` body ([`CUT_BODY_MAX_GAP`]).
fn is_next_level(last: &BodySpan, cut_top: f64) -> bool {
    cut_top - (last.s_top + last.height) <= CUT_BODY_MAX_GAP * last.height
}

/// A body beyond the last disc of the chain at one of its ends.
enum EndBody {
    /// Both endplates in view (the disc beyond it is cut by the scan's edge).
    Complete(endplates::BodyEndplates),
    /// The scan's edge cuts the body itself.
    Cut(cut_body::CutBody),
}

/// The bodies beyond the chain's first and last discs (cranial, caudal) where the chain's end
/// bodies were measured and the centreline reaches the scan's edge: complete when both
/// endplates are found, the far one at least 2 mm inside the scan, and every column's height is
/// within 0.6–1.5 × its neighbour's mean; else cut, when enough of it is in view.
fn end_bodies(
    volume: &HuVolume,
    img: &Straightened,
    cl: &Centreline,
    discs: &[f64],
    bodies: &[Body],
    edge_bias: f64,
    cfg: &ClassicalConfig,
) -> (Option<EndBody>, Option<EndBody>) {
    let (Some(first), Some(last), Some(&d0), Some(&dn)) =
        (bodies.first(), bodies.last(), discs.first(), discs.last())
    else {
        return (None, None);
    };
    let end = cl.length();
    let one = |edge: f64, disc: f64, neighbour: &Body| -> Option<EndBody> {
        let (up, down) = if edge < disc {
            (edge, disc)
        } else {
            (disc, edge)
        };
        if let Some(ep) = endplates::measure(img, up, down, edge_bias, cfg) {
            let far = if edge < disc {
                ep.s_sup.iter().copied().fold(f64::INFINITY, f64::min)
            } else {
                ep.s_inf.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            };
            // With no disc beyond it to confirm the far endplate, a short column is more
            // likely a misread than a fracture: every column must be 0.6–1.5 × the neighbour.
            let reference = mean_height(&neighbour.ep).max(1.0);
            let plausible =
                (0..3).all(|c| (0.6..=1.5).contains(&((ep.s_inf[c] - ep.s_sup[c]) / reference)));
            tracing::debug!(
                edge,
                disc,
                sup = ?ep.s_sup,
                inf = ?ep.s_inf,
                reference,
                plausible,
                "end body measured"
            );
            if (far - edge).abs() >= 2.0 && plausible {
                return Some(EndBody::Complete(ep));
            }
        }
        cut_body::measure(img, edge, disc, edge_bias, cfg).map(EndBody::Cut)
    };
    let cranial = (first.disc == 0 && at_scan_edge(volume, cl.frame_at(0.0).p))
        .then(|| one(0.0, d0, first))
        .flatten();
    let caudal = (last.disc + 2 == discs.len() && at_scan_edge(volume, cl.frame_at(end).p))
        .then(|| one(end, dn, last))
        .flatten();
    (cranial, caudal)
}

/// Whether a point lies within 1.5 slices of the first or last slice of the volume.
fn at_scan_edge(volume: &HuVolume, p: geom::Vec3) -> bool {
    let k = volume.header.patient_to_index(p)[2];
    let last = volume.header.dims[2] as f64 - 1.0;
    k.is_finite() && (k <= 1.5 || k >= last - 1.5)
}

/// A cut body as an output vertebra at label index `li` (when that lies within `range`):
/// its near endplate measured, its cut side's keypoints on the scan's edge, flagged
/// `truncated` and `not_gradable`.
fn cut_vertebra(
    cl: &Centreline,
    cut: &cut_body::CutBody,
    li: isize,
    range: (isize, isize),
    naming: &labels::Naming,
) -> Option<DetectedVertebra> {
    if li < range.0 || li > range.1 {
        return None;
    }
    let label = VertebraLevel::from_index(usize::try_from(li).ok()?)?;
    let edge = [cut.s_edge; 3];
    let (s_sup, s_inf) = if cut.s_edge < cut.s_endplate[1] {
        (edge, cut.s_endplate)
    } else {
        (cut.s_endplate, edge)
    };
    let p = |s: f64, u: f64| straighten::to_patient(cl, s, u);
    let kp = Keypoints {
        superior_posterior: p(s_sup[0], cut.u_cols[0]),
        superior_middle: p(s_sup[1], cut.u_cols[1]),
        superior_anterior: p(s_sup[2], cut.u_cols[2]),
        inferior_posterior: p(s_inf[0], cut.u_cols[0]),
        inferior_middle: p(s_inf[1], cut.u_cols[1]),
        inferior_anterior: p(s_inf[2], cut.u_cols[2]),
    };
    let s_mid = 0.5 * (s_sup[1] + s_inf[1]);
    let f = cl.frame_at(s_mid);
    let edge_strength = (cut.edge_hu / 200.0).clamp(0.3, 1.0);
    let mut flags = vec![VertebraFlag::Truncated, VertebraFlag::NotGradable];
    if naming.uncertain {
        flags.insert(0, VertebraFlag::LabelUncertain);
    }
    Some(DetectedVertebra {
        label,
        center_mm: p(s_mid, 0.5 * (cut.u_post + cut.u_ant)),
        keypoints_mm: kp,
        anterior_dir: f.a,
        cranial_dir: f.t,
        confidence: (naming.confidence * edge_strength * cut.found_fraction.sqrt() * 0.8)
            .clamp(0.0, 1.0),
        flags,
    })
}

/// Smallest ratio of a body's shortest to its tallest height that the detector believes: a
/// loss beyond 75 % (vertebra plana) is far rarer than a misread endplate or a centreline
/// that strayed from the body, so such a body is flagged for review rather than graded.
const MIN_PLAUSIBLE_HEIGHT_RATIO: f64 = 0.25;

/// Smallest ratio of the posterior height to the anterior and middle ones that the detector
/// believes. Osteoporotic fractures spare the posterior wall, the column's strongest part: a
/// wedge lowers the front, a biconcave fracture the middle, a crush all three together. A
/// posterior height a Genant-2 margin below both others (an "inverse wedge") is a burst
/// fracture of trauma, not of a screening population, and far likelier an endplate misread
/// behind the basivertebral vein or over the pedicles.
const MIN_POSTERIOR_RATIO: f64 = 0.75;

/// The heights (anterior, middle, posterior) when they are not believable as a vertebral body:
/// one shorter than the smallest accepted height, under [`MIN_PLAUSIBLE_HEIGHT_RATIO`] of the
/// tallest, or a posterior height under [`MIN_POSTERIOR_RATIO`] of both the others.
fn implausible_heights(k: &Keypoints, cfg: &ClassicalConfig) -> Option<[f64; 3]> {
    let heights = k.heights();
    let h = [heights.anterior, heights.middle, heights.posterior];
    let (lo, hi) = (
        h.iter().copied().fold(f64::MAX, f64::min),
        h.iter().copied().fold(0.0, f64::max),
    );
    let inverse_wedge =
        heights.posterior < MIN_POSTERIOR_RATIO * heights.anterior.min(heights.middle);
    (lo < cfg.body_min_height_mm || lo < MIN_PLAUSIBLE_HEIGHT_RATIO * hi || inverse_wedge)
        .then_some(h)
}

/// Build the output vertebra (keypoints in patient space) from straightened measurements.
fn vertebra(
    cl: &Centreline,
    ep: &endplates::BodyEndplates,
    label: VertebraLevel,
) -> DetectedVertebra {
    let p = |s: f64, u: f64| straighten::to_patient(cl, s, u);
    let kp = match axis_keypoints(cl, ep) {
        Some(k) => Keypoints {
            superior_posterior: k.superior[0],
            superior_middle: k.superior[1],
            superior_anterior: k.superior[2],
            inferior_posterior: k.inferior[0],
            inferior_middle: k.inferior[1],
            inferior_anterior: k.inferior[2],
        },
        // Too few sub-columns to know the body's own axis: columns along the frame.
        None => Keypoints {
            superior_posterior: p(ep.s_sup[0], ep.u_cols[0]),
            superior_middle: p(ep.s_sup[1], ep.u_cols[1]),
            superior_anterior: p(ep.s_sup[2], ep.u_cols[2]),
            inferior_posterior: p(ep.s_inf[0], ep.u_cols[0]),
            inferior_middle: p(ep.s_inf[1], ep.u_cols[1]),
            inferior_anterior: p(ep.s_inf[2], ep.u_cols[2]),
        },
    };
    let all = [
        kp.superior_posterior,
        kp.superior_middle,
        kp.superior_anterior,
        kp.inferior_posterior,
        kp.inferior_middle,
        kp.inferior_anterior,
    ];
    let center = geom::scale(
        all.iter().fold([0.0; 3], |a, &b| geom::add(a, b)),
        1.0 / 6.0,
    );
    let s_mid = 0.5 * (ep.s_sup[1] + ep.s_inf[1]);
    let f = cl.frame_at(s_mid);
    DetectedVertebra {
        label,
        center_mm: center,
        keypoints_mm: kp,
        anterior_dir: f.a,
        cranial_dir: f.t,
        confidence: 0.0,
        flags: vec![],
    }
}

/// The six keypoints on columns along the body's own axis (see [`body_axis`]), from the
/// endplate surfaces found on the sub-columns.
fn axis_keypoints(
    cl: &Centreline,
    ep: &endplates::BodyEndplates,
) -> Option<body_axis::AxisKeypoints> {
    let p = |s: f64, u: f64| straighten::to_patient(cl, s, u);
    let s_mid = 0.5 * (ep.s_sup[1] + ep.s_inf[1]);
    let f = cl.frame_at(s_mid);
    let plane = body_axis::SagittalPlane {
        origin: f.p,
        anterior: f.a,
        cranial: f.t,
    };
    let surface = |e: &[Option<f64>]| -> body_axis::Surface {
        e.iter()
            .zip(&ep.u_sub)
            .map(|(s, &u)| s.map(|s| p(s, u)))
            .collect()
    };
    let k = body_axis::keypoints(
        &plane,
        &surface(&ep.sup_sub),
        &surface(&ep.inf_sub),
        p(s_mid, ep.u_post),
        p(s_mid, ep.u_ant),
        endplates::COLUMNS,
    )?;
    tracing::debug!(
        "body at {s_mid:.0}: axis tilt {:.1}°, u {:.1}..{:.1}",
        k.tilt_deg,
        ep.u_post,
        ep.u_ant
    );
    Some(k)
}

/// Move a vertebra's keypoints and centre sideways into the body's own mid-sagittal plane
/// (heights are unchanged: every point moves by the same vector).
fn recentre_laterally(
    sampler: &VolumeSampler,
    cl: &Centreline,
    ep: &endplates::BodyEndplates,
    v: &mut DetectedVertebra,
) {
    let s_mid = 0.5 * (ep.s_sup[1] + ep.s_inf[1]);
    let frame = cl.frame_at(s_mid);
    let Some(offset) = lateral::midplane_offset(sampler, &frame, v.center_mm) else {
        return;
    };
    tracing::debug!("body at {s_mid:.0}: lateral recentring {offset:+.2} mm");
    let shift = geom::scale(frame.l, offset);
    let k = &mut v.keypoints_mm;
    for p in [
        &mut k.superior_anterior,
        &mut k.superior_middle,
        &mut k.superior_posterior,
        &mut k.inferior_anterior,
        &mut k.inferior_middle,
        &mut k.inferior_posterior,
        &mut v.center_mm,
    ] {
        *p = geom::add(*p, shift);
    }
}

/// Metal (screws, rods) within the vertebra's segment on the coarse grid.
fn metal_near(
    g: &Grid,
    cl: &Centreline,
    ep: &endplates::BodyEndplates,
    cfg: &ClassicalConfig,
) -> bool {
    let (s0, s1) = (
        ep.s_sup.iter().copied().fold(f64::INFINITY, f64::min),
        ep.s_inf.iter().copied().fold(f64::NEG_INFINITY, f64::max),
    );
    let mut s = s0;
    while s <= s1 {
        let f = cl.frame_at(s);
        for u in (-40..=30).step_by(2) {
            for v in (-30..=30).step_by(2) {
                let p = geom::axpy(geom::axpy(f.p, u as f64, f.a), v as f64, f.l);
                if g.sample(p) as f64 > cfg.metal_hu {
                    return true;
                }
            }
        }
        s += 2.0;
    }
    false
}

/// Whether a coherent ring crosses the body on the slices through its centre.
fn ring_crosses(
    volume: &HuVolume,
    v: &DetectedVertebra,
    ep: &endplates::BodyEndplates,
    cfg: &ClassicalConfig,
    cache: &mut HashMap<usize, Vec<artefacts::Ring>>,
) -> bool {
    let half = 0.5 * (ep.u_ant - ep.u_post) + 3.0;
    let (r_c, z, q) = artefacts::radius_of(volume, v.center_mm);
    let rings = cache
        .entry(z)
        .or_insert_with(|| artefacts::rings_on_slice(volume, z, cfg.ring_min_hu));
    rings
        .iter()
        .any(|r| (r.radius_mm - r_c).abs() <= half && r.spans(q))
}

/// The centreline at `step` mm, cranial → caudal.
fn sample_centreline(cl: &Centreline, step: f64) -> Vec<CentrelinePoint> {
    let n = (cl.length() / step).floor() as usize + 1;
    (0..n)
        .map(|i| {
            let f = cl.frame_at(i as f64 * step);
            CentrelinePoint {
                position_mm: f.p,
                cranial_dir: f.t,
                anterior_dir: f.a,
            }
        })
        .collect()
}

/// Intermediate products for diagnostics and the accuracy tooling.
pub struct Trace {
    /// Coarse grid.
    pub grid: Grid,
    /// Centreline.
    pub centreline: Centreline,
    /// Straightened image.
    pub image: Straightened,
    /// Disc arc lengths.
    pub discs: Vec<f64>,
}

/// Run the pipeline up to the disc search and return its intermediate products.
pub fn trace(volume: &HuVolume, cfg: &ClassicalConfig) -> Option<Trace> {
    let grid = grid::coarse_grid(volume, cfg.coarse_mm)?;
    let cands: Vec<canal::CanalCandidate> = (0..grid.dims[2])
        .flat_map(|k| canal::candidates(&grid, k, cfg))
        .collect();
    let track = canal::track(&grid, &cands, cfg)?;
    let cl = centreline::build(&grid, &track, cfg)?;
    let sampler = VolumeSampler::new(volume)?;
    let image = straighten::straighten(
        &sampler,
        &cl,
        cfg.straight_step_mm,
        0.5,
        (-45.0, 45.0),
        (cfg.lateral_half_mm, endplate_band_mm(volume, cfg)),
    );
    let bias = cfg.edge_bias_per_slice_mm * volume.header.spacing_mm[2].abs().clamp(0.3, 10.0);
    let discs = rephase(
        &image,
        segment::discs(&image, cfg).iter().map(|d| d.s).collect(),
        bias,
        cfg,
    );
    Some(Trace {
        grid,
        centreline: cl,
        image,
        discs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keypoints of a body 30 mm deep with heights (anterior, middle, posterior), its endplates
    /// centred on z = 0.
    fn body(ha: f64, hm: f64, hp: f64) -> Keypoints {
        let at = |y: f64, h: f64, sign: f64| [0.0, y, sign * h / 2.0];
        Keypoints {
            superior_anterior: at(-15.0, ha, 1.0),
            superior_middle: at(0.0, hm, 1.0),
            superior_posterior: at(15.0, hp, 1.0),
            inferior_anterior: at(-15.0, ha, -1.0),
            inferior_middle: at(0.0, hm, -1.0),
            inferior_posterior: at(15.0, hp, -1.0),
        }
    }

    #[test]
    fn s1_is_a_step_from_psoas_or_iliac_crests_to_the_sacral_alae() {
        let cfg = ClassicalConfig::default();
        // L5 with psoas at its sides over S1 between its alae.
        assert!(is_lumbosacral_step(0.0, 0.6, &cfg));
        // A low-seated L5 with the iliac crests beside it (the real abdominal CT: 0.19-0.26).
        assert!(is_lumbosacral_step(0.26, 0.61, &cfg));
        // Two lumbar levels with psoas at both sides: no alae.
        assert!(!is_lumbosacral_step(0.0, 0.2, &cfg));
        // Bone at the sides of both levels (sacrum over sacrum, or pelvis around both): no step.
        assert!(!is_lumbosacral_step(0.5, 0.7, &cfg));
        assert!(!is_lumbosacral_step(0.3, 0.5, &cfg));
    }

    #[test]
    fn a_cut_body_a_whole_level_below_the_chain_is_not_the_next_level() {
        // The chain's last body spans 100-120 mm.
        let last = BodySpan {
            s_center: 110.0,
            height: 20.0,
            s_top: 100.0,
        };
        // Below a 6 mm disc: the next level.
        assert!(is_next_level(&last, 126.0));
        // 24 mm below it: a body (seed 5006's T11) lies unmeasured in between.
        assert!(!is_next_level(&last, 144.0));
    }

    #[test]
    fn a_severe_fracture_is_plausible_but_a_sliver_is_not() {
        let cfg = ClassicalConfig::default();
        // Genant 3 wedge (55 % anterior loss) and a 60 % biconcave body: graded as measured.
        assert!(implausible_heights(&body(9.0, 15.0, 20.0), &cfg).is_none());
        assert!(implausible_heights(&body(19.0, 8.0, 20.0), &cfg).is_none());
        // What a centreline that strayed from the body reads (calibration case 84): 97 % loss.
        assert!(implausible_heights(&body(0.7, 10.9, 21.7), &cfg).is_some());
        // A column under the smallest accepted height.
        assert!(implausible_heights(&body(3.5, 4.0, 4.5), &cfg).is_some());
    }

    #[test]
    fn a_crush_is_plausible_but_a_posterior_wall_collapsed_alone_is_not() {
        let cfg = ClassicalConfig::default();
        // A uniform crush lowers all three heights together.
        assert!(implausible_heights(&body(14.0, 13.5, 14.5), &cfg).is_none());
        // A posterior height far below the front and middle: the real chest CT's T12 read on a
        // superior endplate misplaced 10 mm into the body behind the basivertebral vein.
        assert!(implausible_heights(&body(21.8, 17.5, 12.7), &cfg).is_some());
    }
}
