//! Every sentence burned into the images, in English and Russian.

use crate::config::{Language, Projection};
use spinescreen_proto::StudyStatus;

/// The burned-in vocabulary of one language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Strings {
    /// Title of the sagittal frame.
    pub sagittal_title: &'static str,
    /// Title of the coronal frame.
    pub coronal_title: &'static str,
    /// "slab" in "10 mm slab (average)".
    pub slab: &'static str,
    /// The millimetre unit.
    pub mm: &'static str,
    /// "average" projection.
    pub average: &'static str,
    /// The negative finding (the seed's wording).
    pub not_detected: &'static str,
    /// Prefix of the levels assessed, after "not detected" when some were not.
    pub assessed: &'static str,
    /// The positive finding, followed by the vertebrae.
    pub suspected: &'static str,
    /// The intended-use sentence.
    pub disclaimer: &'static str,
    /// Legend entries: grades 0–1, 2, 3, not gradable.
    pub legend: [&'static str; 4],
    /// Table heading.
    pub table_heading: &'static str,
    /// Title of a technical-defect frame.
    pub technical_defect: &'static str,
    /// Title of an abstention frame.
    pub abstained: &'static str,
    /// Title of a frame for an analysed study without a usable spine detection.
    pub no_detection: &'static str,
    /// "Reason".
    pub reason: &'static str,
    /// Trabecular attenuation line prefix.
    pub trabecular: &'static str,
    /// Anterior, posterior, right, left orientation letters.
    pub orientation: [&'static str; 4],
}

const EN: Strings = Strings {
    sagittal_title: "Curved sagittal reformat",
    coronal_title: "Curved coronal reformat",
    slab: "slab",
    mm: "mm",
    average: "average",
    not_detected: "Target pathology not detected",
    assessed: "assessed",
    suspected: "Suspected compression fracture",
    disclaimer: "For assistive use; a radiologist makes the diagnosis",
    legend: [
        "Genant 0–1 (< 25 %)",
        "Genant 2 (25–40 %)",
        "Genant 3 (≥ 40 %)",
        "not gradable",
    ],
    table_heading: "Level  Genant  Loss   Ha / Hm / Hp, mm",
    technical_defect: "Technical defect: the study was not analysed",
    abstained: "Not graded: the service abstained",
    no_detection: "Not graded: no usable spine detection",
    reason: "Reason",
    trabecular: "Trabecular attenuation",
    orientation: ["A", "P", "R", "L"],
};

const RU: Strings = Strings {
    sagittal_title: "Криволинейная сагиттальная реконструкция",
    coronal_title: "Криволинейная корональная реконструкция",
    slab: "слой",
    mm: "мм",
    average: "среднее",
    not_detected: "Целевая патология не обнаружена",
    assessed: "оценены",
    suspected: "Подозрение на компрессионный перелом",
    disclaimer: "Для вспомогательного использования; диагноз ставит врач-рентгенолог",
    legend: [
        "Genant 0–1 (< 25 %)",
        "Genant 2 (25–40 %)",
        "Genant 3 (≥ 40 %)",
        "не оценивается",
    ],
    table_heading: "Позвонок  Genant  Снижение   Ha / Hm / Hp, мм",
    technical_defect: "Технический дефект: исследование не проанализировано",
    abstained: "Оценка не выполнена: сервис воздержался",
    no_detection: "Оценка не выполнена: позвоночник не найден",
    reason: "Причина",
    trabecular: "Плотность губчатой кости",
    orientation: ["A", "P", "R", "L"],
};

impl Strings {
    /// The vocabulary for `language`.
    pub fn for_language(language: Language) -> &'static Strings {
        match language {
            Language::En => &EN,
            Language::Ru => &RU,
        }
    }

    /// "10 mm slab (average)".
    pub fn slab_description(&self, slab_mm: f64, projection: Projection) -> String {
        let p = match projection {
            Projection::Average => self.average,
            Projection::Mip => "MIP",
        };
        format!("{slab_mm:.0} {} {} ({p})", self.mm, self.slab)
    }

    /// Title of the frame for a study that was not graded.
    pub fn not_graded_title(&self, status: StudyStatus) -> &'static str {
        match status {
            StudyStatus::TechnicalDefect => self.technical_defect,
            StudyStatus::Abstained => self.abstained,
            StudyStatus::Ok => self.no_detection,
        }
    }
}
