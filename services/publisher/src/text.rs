//! The report's human-readable text in each supported [`Language`]: conclusion, service
//! description and user guide — the text items the Moscow experiment made mandatory in every SR
//! (Artyukova et al., Digital Diagnostics 2024;5(3):505–518).

use crate::config::Language;
use spinescreen_proto::{
    BoneDensity, GenantGrade, Reason, ReasonCode, StudyResult, StudyStatus, VertebraFlag,
    VertebraLevel, VertebraResult,
};

/// The conclusion of a study, one paragraph.
///
/// Positive: `Compression deformity L1, Genant 3 (45%); T12, Genant 2 (31%). L1 trabecular
/// attenuation 87 HU: suggests osteoporosis.` Negative: `Target pathology not detected.` plus
/// the bone-density sentence. Not analysed: the reason, with its code.
pub fn conclusion(result: &StudyResult, lang: Language) -> String {
    let mut sentences: Vec<String> = vec![];
    match result.status {
        StudyStatus::Ok if result.vertebrae.is_empty() => {
            // Never call a study negative when nothing was measured.
            sentences.push(match lang {
                Language::En => {
                    "No vertebra could be measured; target pathology was not assessed.".into()
                }
                Language::Ru => {
                    "Ни один позвонок не измерен; целевая патология не оценивалась.".into()
                }
            });
        }
        StudyStatus::Ok => {
            sentences.push(fracture_sentence(&result.vertebrae, lang));
            if let Some(s) = assessed_sentence(&result.vertebrae, lang) {
                sentences.push(s);
            }
            if let Some(s) = mild_sentence(&result.vertebrae, lang) {
                sentences.push(s);
            }
            if let Some(s) = not_gradable_sentence(&result.vertebrae, lang) {
                sentences.push(s);
            }
        }
        StudyStatus::TechnicalDefect => {
            let why = reason_text(result.reason.as_ref(), lang);
            sentences.push(match lang {
                Language::En => format!(
                    "Technical defect: {why}. The study was not analysed; target pathology was not assessed."
                ),
                Language::Ru => format!(
                    "Технический дефект: {why}. Исследование не проанализировано; целевая патология не оценивалась."
                ),
            });
        }
        StudyStatus::Abstained => {
            let why = reason_text(result.reason.as_ref(), lang);
            sentences.push(match lang {
                Language::En => {
                    format!("Analysis declined: {why}. Target pathology was not assessed.")
                }
                Language::Ru => {
                    format!("Анализ не выполнен: {why}. Целевая патология не оценивалась.")
                }
            });
        }
    }
    if result.status == StudyStatus::Ok || result.bone_density.is_some() {
        sentences.push(bone_density_sentence(result.bone_density.as_ref(), lang));
    }
    sentences.join(" ")
}

/// Vertebrae of Genant grade ≥ 2 (height loss > 25 %, the experiment's target), most severe
/// first.
fn target_findings(vertebrae: &[VertebraResult]) -> Vec<&VertebraResult> {
    let mut v: Vec<&VertebraResult> = vertebrae
        .iter()
        .filter(|v| v.genant_grade >= GenantGrade::Moderate)
        .collect();
    v.sort_by(|a, b| {
        b.genant_grade
            .cmp(&a.genant_grade)
            .then(b.deformity.total_cmp(&a.deformity))
    });
    v
}

fn percent(fraction: f64) -> i64 {
    (fraction * 100.0).round() as i64
}

fn fracture_sentence(vertebrae: &[VertebraResult], lang: Language) -> String {
    let found = target_findings(vertebrae);
    if found.is_empty() {
        return match lang {
            Language::En => "Target pathology not detected.".into(),
            Language::Ru => "Целевая патология не выявлена.".into(),
        };
    }
    let items: Vec<String> = found
        .iter()
        .map(|v| {
            format!(
                "{}, Genant {} ({}%)",
                v.label,
                u8::from(v.genant_grade),
                percent(v.deformity)
            )
        })
        .collect();
    let head = match lang {
        Language::En => "Compression deformity",
        Language::Ru => "Компрессионная деформация",
    };
    format!("{head} {}.", items.join("; "))
}

/// Where some levels could not be assessed, which ones were: a negative finding holds only for
/// them. Consecutive levels are written as a range (`T1–T8, T10, L2`).
fn assessed_sentence(vertebrae: &[VertebraResult], lang: Language) -> Option<String> {
    let gradable = |v: &&VertebraResult| !v.flags.contains(&VertebraFlag::NotGradable);
    if vertebrae.iter().all(|v| gradable(&v)) {
        return None;
    }
    let labels: Vec<VertebraLevel> = vertebrae.iter().filter(gradable).map(|v| v.label).collect();
    if labels.is_empty() {
        return None;
    }
    let ranges = VertebraLevel::ranges(&labels).join(", ");
    Some(match lang {
        Language::En => format!("Assessed: {ranges}."),
        Language::Ru => format!("Оценены: {ranges}."),
    })
}

fn mild_sentence(vertebrae: &[VertebraResult], lang: Language) -> Option<String> {
    let mild: Vec<String> = vertebrae
        .iter()
        .filter(|v| v.genant_grade == GenantGrade::Mild)
        .map(|v| format!("{} ({}%)", v.label, percent(v.deformity)))
        .collect();
    if mild.is_empty() {
        return None;
    }
    Some(match lang {
        Language::En => format!("Mild deformity (Genant 1): {}.", mild.join(", ")),
        Language::Ru => format!("Лёгкая деформация (Genant 1): {}.", mild.join(", ")),
    })
}

fn not_gradable_sentence(vertebrae: &[VertebraResult], lang: Language) -> Option<String> {
    let labels: Vec<String> = vertebrae
        .iter()
        .filter(|v| v.flags.contains(&VertebraFlag::NotGradable))
        .map(|v| {
            let cut = v.flags.contains(&VertebraFlag::Truncated);
            match (cut, lang) {
                (false, _) => v.label.to_string(),
                (true, Language::En) => format!("{} (partially imaged)", v.label),
                (true, Language::Ru) => format!("{} (частично в зоне сканирования)", v.label),
            }
        })
        .collect();
    if labels.is_empty() {
        return None;
    }
    Some(match lang {
        Language::En => format!("Not assessable: {}.", labels.join(", ")),
        Language::Ru => format!("Не оценены: {}.", labels.join(", ")),
    })
}

/// The bone-density sentence: ISCD 2023 (< 100 HU suggests osteoporosis), else the Pickhardt
/// 2013 band (≤ 110 low, 110–160 indeterminate, > 160 normal).
fn bone_density_sentence(bd: Option<&BoneDensity>, lang: Language) -> String {
    let Some(bd) = bd else {
        return match lang {
            Language::En => "Bone density not assessed (T11-L3 not measurable).".into(),
            Language::Ru => {
                "Минеральная плотность не оценена (T11-L3 недоступны для измерения).".into()
            }
        };
    };
    let hu = bd.hu.round() as i64;
    let reading = if bd.iscd_category == "osteoporosis_suggested" {
        match lang {
            Language::En => "suggests osteoporosis",
            Language::Ru => "признаки остеопороза",
        }
    } else {
        match (bd.pickhardt_category.as_str(), lang) {
            ("low", Language::En) => "low bone density, osteoporosis possible",
            ("low", Language::Ru) => "сниженная плотность, возможен остеопороз",
            ("indeterminate", Language::En) => "indeterminate for osteoporosis",
            ("indeterminate", Language::Ru) => "пограничное значение",
            (_, Language::En) => "osteoporosis not suggested",
            (_, Language::Ru) => "признаков остеопороза нет",
        }
    };
    let mut s = match lang {
        Language::En => format!("{} trabecular attenuation {hu} HU: {reading}.", bd.level),
        Language::Ru => format!("Трабекулярная плотность {} {hu} HU: {reading}.", bd.level),
    };
    if bd.contrast_agent.is_some() {
        s.push_str(match lang {
            Language::En => " Contrast-enhanced series: attenuation may be 10-20 HU higher.",
            Language::Ru => {
                " Исследование с контрастированием: плотность может быть завышена на 10-20 HU."
            }
        });
    }
    s
}

/// Why a study was not analysed, in `lang`, ending with its code (`… [NO_CT_SERIES]`).
pub fn reason_text(reason: Option<&Reason>, lang: Language) -> String {
    let Some(reason) = reason else {
        return match lang {
            Language::En => "reason not recorded".into(),
            Language::Ru => "причина не указана".into(),
        };
    };
    let text = match lang {
        Language::En => reason.text.clone(),
        Language::Ru => russian_reason(&reason.code)
            .map(str::to_string)
            .unwrap_or_else(|| reason.text.clone()),
    };
    format!("{} [{}]", text.trim_end_matches('.'), reason.code)
}

fn russian_reason(code: &str) -> Option<&'static str> {
    Some(match code {
        ReasonCode::NO_CT_SERIES => "нет серии КТ-изображений",
        ReasonCode::NO_DICOM => "нет файлов DICOM",
        ReasonCode::TOO_FEW_SLICES => "слишком мало срезов",
        ReasonCode::INCONSISTENT_GEOMETRY => "срезы различаются по ориентации или матрице",
        ReasonCode::NON_UNIFORM_SPACING => "неравномерный шаг срезов (пропущены срезы)",
        ReasonCode::DUPLICATE_SLICES => "повторяющиеся срезы",
        ReasonCode::ZERO_SPACING => "нулевой или отсутствующий шаг пикселей",
        ReasonCode::GANTRY_TILT => "наклон гентри",
        ReasonCode::MISSING_ATTRIBUTE => "отсутствует обязательный атрибут DICOM",
        ReasonCode::MISSING_PIXEL_DATA => "нет пиксельных данных",
        ReasonCode::DECODE_FAILURE => "не удалось декодировать изображение",
        ReasonCode::UNSUPPORTED_TRANSFER_SYNTAX => "неподдерживаемый синтаксис передачи",
        ReasonCode::OVERSIZE => "исследование превышает допустимый размер",
        ReasonCode::NO_SPINE => "позвоночник не найден",
        ReasonCode::SPINE_NOT_TRACEABLE => "не удалось проследить позвоночник",
        ReasonCode::RING_ARTIFACTS => "кольцевые артефакты",
        ReasonCode::HARDWARE => "металлоконструкции или цемент",
        ReasonCode::TOO_FEW_VERTEBRAE => "слишком мало измеримых позвонков",
        ReasonCode::SLICES_TOO_THICK => "слишком толстые срезы для оценки высоты позвонков",
        ReasonCode::INTERNAL_ERROR => "внутренняя ошибка сервиса",
        _ => return None,
    })
}

/// What the service does (mandatory "description" item).
pub fn description(lang: Language) -> &'static str {
    match lang {
        Language::En => {
            "Automated screening of CT for vertebral body compression deformities of T1-L5 \
             (Genant semiquantitative method) and for low bone density from the trabecular \
             attenuation of T11-L3 (ISCD 2023; Pickhardt et al. 2013)."
        }
        Language::Ru => {
            "Автоматический скрининг КТ на компрессионные деформации тел позвонков T1-L5 \
             (полуколичественный метод Genant) и сниженную минеральную плотность по \
             трабекулярной плотности T11-L3 (ISCD 2023; Pickhardt et al. 2013)."
        }
    }
}

/// How to read the report (mandatory "user guide" item).
pub fn user_guide(lang: Language) -> &'static str {
    match lang {
        Language::En => {
            "Each vertebra is reported with anterior, middle and posterior body heights (mm), \
             the largest height loss (%), its Genant grade (1 mild 20-25%, 2 moderate 25-40%, \
             3 severe 40% or more) and type (wedge, biconcave, crush). A loss above 25% \
             (Genant 2-3) is the target finding. The accompanying image series is a curved \
             sagittal reformat of the spine, vertebrae coloured green (Genant 1), yellow (2) and \
             red (3). Trabecular attenuation below 100 HU at L1-L2 suggests osteoporosis \
             (ISCD 2023). The report is generated automatically and is not verified: the \
             radiologist makes the final diagnosis."
        }
        Language::Ru => {
            "Для каждого позвонка указаны передняя, средняя и задняя высота тела (мм), \
             наибольшая потеря высоты (%), степень по Genant (1 лёгкая 20-25%, 2 умеренная \
             25-40%, 3 тяжёлая 40% и более) и тип (клиновидная, двояковогнутая, компрессионная). \
             Целевая находка - потеря высоты более 25% (Genant 2-3). Дополнительная серия \
             изображений - криволинейная сагиттальная реконструкция позвоночника, позвонки \
             окрашены зелёным (Genant 1), жёлтым (2) и красным (3). Трабекулярная плотность \
             L1-L2 ниже 100 HU указывает на остеопороз (ISCD 2023). Отчёт сформирован \
             автоматически и не верифицирован: окончательное заключение делает врач-рентгенолог."
        }
    }
}
