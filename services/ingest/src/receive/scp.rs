//! DICOM C-STORE SCP: the way a PACS or scanner pushes a study.
//!
//! Association negotiation (PS3.8 §7.1) accepts the configured called AE title, optionally only
//! the listed calling AE titles, and presentation contexts for CT Image Storage, Enhanced and
//! Legacy Converted Enhanced CT, Secondary Capture and Verification (PS3.4 Annex A, B) in the
//! transfer syntaxes this build can decode. Each C-STORE-RQ (PS3.7 §9.1.1) is kept as a Part 10
//! file — the received dataset bytes untouched behind a File Meta Information group (PS3.10
//! §7.1) — appended to the local spool and flushed to disk when `scp.spool_dir` is set (the
//! reception is uploaded as bundles), else stored as its own object, and only then answered
//! with status 0000 (success); C000 (cannot understand) when the data set
//! fails the pre-parse check ([`crate::guard`]: lengths, nesting, element count); A700 (out of
//! resources) when it is over `limits.max_bytes_per_file` (its fragments are dropped as they
//! arrive, never held) or storage failed. C-ECHO (PS3.7 §9.1.5) is answered with success.
//!
//! At most `scp.max_associations` connections are served at once; a connection that sends no
//! complete PDU for `scp.idle_timeout_s` — before its association request or after — is closed.
//!
//! A reception (one per study on the association) is complete on A-RELEASE, when the peer
//! aborts or drops the connection, or after `inactivity_timeout_s` without a PDU: then one
//! ingest job per study is published.

use super::spool::{lock_spool, recover_spool, spooled_batches, SpoolConfig};
use super::{instance_ids, Keeping, Receptions};
use crate::config::IngestConfig;
use crate::error::IngestError;
use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::{FileMetaTableBuilder, InMemDicomObject};
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;
use dicom_ul::association::server::AccessControl;
use dicom_ul::association::Association as _;
use dicom_ul::pdu::{
    AssociationRJServiceUserReason, PDataValue, PDataValueType, PresentationContextResultReason,
    UserIdentity,
};
use dicom_ul::{Pdu, ServerAssociationOptions};
use spinescreen_runtime::{Broker, CancellationToken, StudyStore};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Abstract syntaxes accepted (PS3.4 B.5).
pub const ACCEPTED_SOP_CLASSES: [&str; 5] = [
    "1.2.840.10008.5.1.4.1.1.2",   // CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.1", // Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.2.2", // Legacy Converted Enhanced CT Image Storage
    "1.2.840.10008.5.1.4.1.1.7",   // Secondary Capture Image Storage
    "1.2.840.10008.1.1",           // Verification
];

/// Transfer syntaxes accepted, in order of preference (PS3.5 §10, Annex A).
pub fn accepted_transfer_syntaxes() -> Vec<&'static str> {
    let mut ts = vec![
        "1.2.840.10008.1.2.1",    // Explicit VR Little Endian
        "1.2.840.10008.1.2",      // Implicit VR Little Endian
        "1.2.840.10008.1.2.4.90", // JPEG 2000 Lossless Only
        "1.2.840.10008.1.2.4.91", // JPEG 2000
        "1.2.840.10008.1.2.4.70", // JPEG Lossless, first-order prediction
        "1.2.840.10008.1.2.4.57", // JPEG Lossless
        "1.2.840.10008.1.2.5",    // RLE Lossless
        "1.2.840.10008.1.2.4.50", // JPEG Baseline
        "1.2.840.10008.1.2.4.51", // JPEG Extended
    ];
    if cfg!(feature = "jpeg-ls") {
        ts.push("1.2.840.10008.1.2.4.80"); // JPEG-LS Lossless
        ts.push("1.2.840.10008.1.2.4.81"); // JPEG-LS Near-Lossless
    }
    ts
}

const C_STORE_RQ: u16 = 0x0001;
const C_STORE_RSP: u16 = 0x8001;
const C_ECHO_RQ: u16 = 0x0030;
const C_ECHO_RSP: u16 = 0x8030;
const NO_DATASET: u16 = 0x0101;
const STATUS_SUCCESS: u16 = 0x0000;
const STATUS_OUT_OF_RESOURCES: u16 = 0xA700;
const STATUS_UNRECOGNIZED_OPERATION: u16 = 0x0211;
/// Error: cannot understand (PS3.4 Table B.2-1): the data set is not a sound DICOM data set.
const STATUS_CANNOT_UNDERSTAND: u16 = 0xC000;
/// Largest DIMSE command accepted, bytes (a C-STORE-RQ is a few hundred bytes).
const MAX_COMMAND_BYTES: usize = 64 * 1024;

/// Called AE title must match; calling AE title must be listed (when a list is configured).
#[derive(Debug, Clone)]
struct AeFilter {
    accepted_calling: Vec<String>,
}

impl AccessControl for AeFilter {
    fn check_access(
        &self,
        this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        if called_ae_title.trim() != this_ae_title.trim() {
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        if !self.accepted_calling.is_empty()
            && !self
                .accepted_calling
                .iter()
                .any(|a| a.trim() == calling_ae_title.trim())
        {
            return Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized);
        }
        Ok(())
    }
}

/// Listen on `<scp.bind_address>:<scp.port>` and serve associations until `shutdown` is
/// cancelled.
pub async fn run_scp(
    config: &IngestConfig,
    store: StudyStore,
    broker: Arc<dyn Broker>,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    let listener = TcpListener::bind((config.scp.bind_address.as_str(), config.scp.port))
        .await
        .map_err(|e| {
            IngestError::Receive(format!(
                "cannot listen on {}:{}: {e}",
                config.scp.bind_address, config.scp.port
            ))
        })?;
    run_scp_on(listener, config, store, broker, shutdown).await
}

/// [`run_scp`] on a listener the caller bound (tests bind port 0). Returns once `shutdown` is
/// cancelled and every open association has completed its receptions.
pub async fn run_scp_on(
    listener: TcpListener,
    config: &IngestConfig,
    store: StudyStore,
    broker: Arc<dyn Broker>,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    let config = Arc::new(config.clone());
    // Held while serving: no other receiver may use (or recover) this spool. What an earlier
    // process left in it is completed after `spool_recovery_delay_s`.
    let mut recovery = None;
    let _spool_lock = match &config.scp.spool_dir {
        Some(dir) => {
            let lock = lock_spool(dir)?;
            let left = spooled_batches(dir).await?;
            if !left.is_empty() {
                let delay = Duration::from_secs(config.scp.spool_recovery_delay_s);
                tracing::info!(
                    receptions = left.len(),
                    delay_s = delay.as_secs(),
                    "an earlier receiver left receptions in the spool; completing them after the delay"
                );
                let (dir, store, broker, shutdown) =
                    (dir.clone(), store.clone(), broker.clone(), shutdown.clone());
                recovery = Some(tokio::spawn(async move {
                    // A stopping receiver completes them at once: its spool may not outlive it.
                    tokio::select! {
                        _ = shutdown.cancelled() => {}
                        _ = tokio::time::sleep(delay) => {}
                    }
                    let jobs = recover_spool(&dir, &left, &store, broker.as_ref()).await;
                    tracing::info!(jobs = jobs.len(), "spooled receptions completed");
                }));
            }
            Some(lock)
        }
        None => None,
    };
    tracing::info!(
        ae_title = %config.scp.ae_title,
        address = ?listener.local_addr().ok(),
        "C-STORE SCP listening"
    );
    let mut associations = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((socket, peer)) => {
                    if associations.len() >= config.scp.max_associations.max(1) {
                        tracing::warn!(%peer, limit = config.scp.max_associations, "too many connections; closed on accept");
                        drop(socket);
                        continue;
                    }
                    let (config, store, broker, shutdown) =
                        (config.clone(), store.clone(), broker.clone(), shutdown.clone());
                    associations.spawn(async move {
                        if let Err(e) = serve_association(socket, &config, &store, broker.as_ref(), &shutdown).await {
                            tracing::warn!(%peer, error = %e, "association ended with an error");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = associations.join_next(), if !associations.is_empty() => {}
        }
    }
    while associations.join_next().await.is_some() {}
    if let Some(recovery) = recovery {
        let _ = recovery.await;
    }
    Ok(())
}

/// How this SCP keeps received instances: spooled when `scp.spool_dir` is set, else each
/// stored before it is answered.
fn keeping(config: &IngestConfig) -> Keeping {
    match &config.scp.spool_dir {
        Some(dir) => Keeping::Spool(Arc::new(SpoolConfig {
            dir: dir.clone(),
            segment_bytes: config.scp.spool_segment_mib.max(1) << 20,
            fsync: config.scp.spool_fsync,
        })),
        None => Keeping::PerInstance,
    }
}

/// A parsed DIMSE command (PS3.7 §9.3, §E).
#[derive(Debug, Clone)]
struct Command {
    field: u16,
    message_id: u16,
    sop_class: String,
    sop_instance: String,
    has_dataset: bool,
}

fn parse_command(bytes: &[u8]) -> Result<Command, IngestError> {
    let obj = InMemDicomObject::read_dataset_with_ts(bytes, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
        .map_err(|e| IngestError::Receive(format!("malformed DIMSE command: {e}")))?;
    let int = |tag| -> Option<u16> {
        obj.element_opt(tag)
            .ok()
            .flatten()
            .and_then(|e| e.to_int::<u16>().ok())
    };
    let text = |tag| -> String { spinescreen_dicom::text_opt(&obj, tag).unwrap_or_default() };
    Ok(Command {
        field: int(tags::COMMAND_FIELD)
            .ok_or_else(|| IngestError::Receive("DIMSE command without Command Field".into()))?,
        message_id: int(tags::MESSAGE_ID).unwrap_or(0),
        sop_class: text(tags::AFFECTED_SOP_CLASS_UID),
        sop_instance: text(tags::AFFECTED_SOP_INSTANCE_UID),
        has_dataset: int(tags::COMMAND_DATA_SET_TYPE).is_some_and(|t| t != NO_DATASET),
    })
}

/// Encode a response command (implicit VR little endian, with its group length).
fn response(request: &Command, field: u16, status: u16) -> Result<Vec<u8>, IngestError> {
    let mut obj = InMemDicomObject::new_empty();
    let put = |obj: &mut InMemDicomObject, tag, vr, v: PrimitiveValue| {
        obj.put(DataElement::new(tag, vr, v));
    };
    if !request.sop_class.is_empty() {
        put(
            &mut obj,
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            PrimitiveValue::from(request.sop_class.as_str()),
        );
    }
    put(
        &mut obj,
        tags::COMMAND_FIELD,
        VR::US,
        PrimitiveValue::from(field),
    );
    put(
        &mut obj,
        tags::MESSAGE_ID_BEING_RESPONDED_TO,
        VR::US,
        PrimitiveValue::from(request.message_id),
    );
    put(
        &mut obj,
        tags::COMMAND_DATA_SET_TYPE,
        VR::US,
        PrimitiveValue::from(NO_DATASET),
    );
    put(&mut obj, tags::STATUS, VR::US, PrimitiveValue::from(status));
    if !request.sop_instance.is_empty() {
        put(
            &mut obj,
            tags::AFFECTED_SOP_INSTANCE_UID,
            VR::UI,
            PrimitiveValue::from(request.sop_instance.as_str()),
        );
    }
    let encode = |obj: &InMemDicomObject| -> Result<Vec<u8>, IngestError> {
        let mut out = Vec::new();
        obj.write_dataset_with_ts(&mut out, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
            .map_err(|e| IngestError::Receive(format!("encoding a DIMSE response: {e}")))?;
        Ok(out)
    };
    let body = encode(&obj)?;
    put(
        &mut obj,
        tags::COMMAND_GROUP_LENGTH,
        VR::UL,
        PrimitiveValue::from(body.len() as u32),
    );
    encode(&obj)
}

/// A Part 10 file from a received dataset: preamble, `DICM`, File Meta Information, then the
/// dataset exactly as received in the negotiated transfer syntax.
fn part10(
    command: &Command,
    transfer_syntax: &str,
    dataset: &[u8],
) -> Result<Vec<u8>, IngestError> {
    let meta = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(command.sop_class.as_str())
        .media_storage_sop_instance_uid(command.sop_instance.as_str())
        .transfer_syntax(transfer_syntax)
        .implementation_class_uid(spinescreen_dicom::IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(spinescreen_dicom::implementation_version_name())
        .build()
        .map_err(|e| IngestError::Receive(format!("file meta: {e}")))?;
    let mut out = Vec::with_capacity(dataset.len() + 512);
    out.extend_from_slice(&[0u8; 128]);
    out.extend_from_slice(b"DICM");
    meta.write(&mut out)
        .map_err(|e| IngestError::Receive(format!("file meta: {e}")))?;
    out.extend_from_slice(dataset);
    Ok(out)
}

/// Check, wrap and store one received data set; the C-STORE status to answer with.
async fn store_instance(
    command: &Command,
    transfer_syntax: &str,
    dataset: &[u8],
    config: &IngestConfig,
    store: &StudyStore,
    receptions: &mut Receptions,
) -> u16 {
    let file = match part10(command, transfer_syntax, dataset) {
        Ok(file) => file,
        Err(e) => {
            tracing::warn!(error = %e, "could not wrap a received instance");
            return STATUS_CANNOT_UNDERSTAND;
        }
    };
    let ids = instance_ids(&file, &config.limits);
    if let Some(why) = &ids.rejected {
        tracing::warn!(reason = %why, "received data set refused");
        return STATUS_CANNOT_UNDERSTAND;
    }
    match receptions
        .store(store, bytes::Bytes::from(file), &ids)
        .await
    {
        Ok(()) => STATUS_SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "could not store a received instance");
            STATUS_OUT_OF_RESOURCES
        }
    }
}

/// The server side of an association over TCP.
type Association = dicom_ul::association::server::AsyncServerAssociation<TcpStream>;

async fn send_command(
    association: &mut Association,
    context_id: u8,
    data: Vec<u8>,
) -> Result<(), IngestError> {
    association
        .send(&Pdu::PData {
            data: vec![PDataValue {
                presentation_context_id: context_id,
                value_type: PDataValueType::Command,
                is_last: true,
                data,
            }],
        })
        .await
        .map_err(|e| IngestError::Receive(format!("sending a response: {e}")))
}

/// Serve one connection: negotiate the association, answer its C-ECHO and C-STORE requests,
/// and publish its receptions however it ends.
async fn serve_association(
    socket: TcpStream,
    config: &IngestConfig,
    store: &StudyStore,
    broker: &dyn Broker,
    shutdown: &CancellationToken,
) -> Result<(), IngestError> {
    let idle = Duration::from_secs(config.scp.idle_timeout_s.max(1));
    let (association, contexts) = establish(socket, config, idle).await?;
    tracing::info!(calling_ae = %association.peer_ae_title(), contexts = contexts.len(), "association accepted");
    let mut session = Session {
        association,
        contexts,
        config,
        store,
        receptions: Receptions::new(keeping(config)),
        command_bytes: Vec::new(),
        data_bytes: Vec::new(),
        pending: None,
        oversize: false,
    };
    let ending = session.receive_until_end(broker, shutdown, idle).await;
    let Session {
        association,
        mut receptions,
        ..
    } = session;
    // Kept open until the receptions are published, unless it is to be aborted.
    let _open = match ending {
        Ok(Ending::Abort) => {
            let _ = association.abort().await;
            None
        }
        _ => Some(association),
    };
    // Whatever was received before an abort, a dropped connection or shutdown is not lost.
    if receptions.is_spooled() {
        complete_spooled(&mut receptions, store, broker, shutdown).await?;
    } else if !receptions.is_empty() {
        receptions.complete(store, broker).await?;
    }
    ending.map(|_| ())
}

/// First and longest wait between attempts to complete spooled receptions whose upload or
/// publication failed (the store or the broker is down).
const SPOOLED_RETRY_WAIT: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// Complete spooled receptions, trying again (waits doubling up to [`SPOOLED_RETRY_WAIT`]) until
/// they are published or the receiver stops. The sender has had its answers and the instances
/// are on disk, so an outage of the store or the broker must delay them, not strand them until
/// the next restart; what is left at shutdown the next receiver completes from the spool.
async fn complete_spooled(
    receptions: &mut Receptions,
    store: &StudyStore,
    broker: &dyn Broker,
    shutdown: &CancellationToken,
) -> Result<(), IngestError> {
    let mut wait = SPOOLED_RETRY_WAIT.0;
    while !receptions.is_empty() {
        let Err(e) = receptions.complete(store, broker).await else {
            break;
        };
        spinescreen_runtime::metrics::RECEPTION_RETRIES.inc();
        tracing::warn!(error = %e, wait_s = wait.as_secs(), "spooled reception not completed; trying again");
        tokio::select! {
            _ = shutdown.cancelled() => return Err(e),
            _ = tokio::time::sleep(wait) => {}
        }
        wait = (wait * 2).min(SPOOLED_RETRY_WAIT.1);
    }
    Ok(())
}

/// How an association's PDU loop ended.
enum Ending {
    /// Released, aborted by the peer or dropped: nothing more to send.
    Closed,
    /// Shutdown, idle or an unexpected PDU: abort it.
    Abort,
}

/// Negotiate the association (AE titles, SOP classes, transfer syntaxes), waiting at most
/// `idle` for the request; the association and its accepted presentation contexts
/// (context ID → transfer syntax UID).
async fn establish(
    socket: TcpStream,
    config: &IngestConfig,
    idle: Duration,
) -> Result<(Association, HashMap<u8, String>), IngestError> {
    let mut options = ServerAssociationOptions::new()
        .ae_access_control(AeFilter {
            accepted_calling: config.scp.accepted_calling_aes.clone(),
        })
        .ae_title(config.scp.ae_title.clone());
    for class in ACCEPTED_SOP_CLASSES {
        options = options.with_abstract_syntax(class);
    }
    for ts in accepted_transfer_syntaxes() {
        options = options.with_transfer_syntax(ts);
    }
    let association = tokio::time::timeout(idle, options.establish_async(socket))
        .await
        .map_err(|_| IngestError::Receive("no association request in time; closed".into()))?
        .map_err(|e| IngestError::Receive(format!("association rejected or failed: {e}")))?;
    let contexts: HashMap<u8, String> = association
        .presentation_contexts()
        .iter()
        .filter(|pc| pc.reason == PresentationContextResultReason::Acceptance)
        .map(|pc| {
            (
                pc.id,
                pc.transfer_syntax.trim_end_matches(['\0', ' ']).to_string(),
            )
        })
        .collect();
    Ok((association, contexts))
}

/// One established association: its contexts, its receptions and the DIMSE message being
/// assembled from P-DATA fragments.
struct Session<'a> {
    association: Association,
    /// Accepted presentation contexts: context ID → transfer syntax UID.
    contexts: HashMap<u8, String>,
    config: &'a IngestConfig,
    store: &'a StudyStore,
    receptions: Receptions,
    /// Fragments of the command being received.
    command_bytes: Vec<u8>,
    /// Fragments of the data set being received.
    data_bytes: Vec<u8>,
    /// The C-STORE request whose data set is arriving.
    pending: Option<Command>,
    /// Whether the arriving data set went over `limits.max_bytes_per_file` (its fragments are
    /// dropped as they arrive).
    oversize: bool,
}

impl Session<'_> {
    /// Receive PDUs until A-RELEASE, an abort, a dropped connection, `idle` without a PDU or
    /// shutdown; completes the receptions after `inactivity_timeout_s` without one.
    async fn receive_until_end(
        &mut self,
        broker: &dyn Broker,
        shutdown: &CancellationToken,
        idle: Duration,
    ) -> Result<Ending, IngestError> {
        // Woken at least every `idle` to close an association that went quiet.
        let inactivity = Duration::from_secs(self.config.inactivity_timeout_s.max(1)).min(idle);
        let mut last_pdu = std::time::Instant::now();
        loop {
            let pdu = tokio::select! {
                _ = shutdown.cancelled() => return Ok(Ending::Abort),
                r = tokio::time::timeout(inactivity, self.association.receive()) => r,
            };
            let pdu = match pdu {
                Err(_elapsed) => {
                    if !self.receptions.is_empty() {
                        tracing::info!(
                            "no instance for {} s: completing the reception",
                            inactivity.as_secs()
                        );
                        self.receptions.complete(self.store, broker).await?;
                    }
                    if last_pdu.elapsed() >= idle {
                        tracing::info!("no PDU for {} s: closing the association", idle.as_secs());
                        return Ok(Ending::Abort);
                    }
                    continue;
                }
                Ok(Err(e)) => {
                    tracing::info!(error = %e, "association closed without release");
                    return Ok(Ending::Closed);
                }
                Ok(Ok(pdu)) => {
                    last_pdu = std::time::Instant::now();
                    pdu
                }
            };
            match pdu {
                Pdu::PData { data } => {
                    for value in data {
                        match value.value_type {
                            PDataValueType::Command => self.on_command_fragment(value).await?,
                            PDataValueType::Data => self.on_data_fragment(value).await?,
                        }
                    }
                }
                Pdu::ReleaseRQ => {
                    // Spooled, every answered instance is on disk already (and completed by
                    // the next receiver if this one dies): the sender is released at once and
                    // the reception uploaded after. Otherwise the job is published first, so a
                    // sender never sees a clean release of a reception that could be lost.
                    if self.receptions.is_spooled() {
                        let _ = self.association.send(&Pdu::ReleaseRP).await;
                        return self
                            .receptions
                            .complete(self.store, broker)
                            .await
                            .map(|_| Ending::Closed);
                    }
                    let published = self.receptions.complete(self.store, broker).await;
                    let _ = self.association.send(&Pdu::ReleaseRP).await;
                    return published.map(|_| Ending::Closed);
                }
                Pdu::AbortRQ { .. } => {
                    tracing::info!("association aborted by the peer");
                    return Ok(Ending::Closed);
                }
                other => {
                    tracing::warn!(pdu = %other.short_description(), "unexpected PDU; aborting");
                    return Ok(Ending::Abort);
                }
            }
        }
    }

    /// A command fragment: once the command is whole, answer a C-ECHO, hold a C-STORE until its
    /// data set arrives, refuse anything else.
    async fn on_command_fragment(&mut self, value: PDataValue) -> Result<(), IngestError> {
        if self.command_bytes.len() + value.data.len() > MAX_COMMAND_BYTES {
            return Err(IngestError::Receive(
                "DIMSE command over the size limit".into(),
            ));
        }
        self.command_bytes.extend_from_slice(&value.data);
        if !value.is_last {
            return Ok(());
        }
        let context_id = value.presentation_context_id;
        let command = parse_command(&self.command_bytes)?;
        self.command_bytes.clear();
        match command.field {
            C_ECHO_RQ => {
                let rsp = response(&command, C_ECHO_RSP, STATUS_SUCCESS)?;
                send_command(&mut self.association, context_id, rsp).await?;
            }
            C_STORE_RQ if command.has_dataset => self.pending = Some(command),
            other => {
                tracing::warn!(command_field = other, "unsupported DIMSE command");
                let rsp = response(&command, other | 0x8000, STATUS_UNRECOGNIZED_OPERATION)?;
                send_command(&mut self.association, context_id, rsp).await?;
            }
        }
        Ok(())
    }

    /// A data set fragment: once the data set is whole, store it and answer its C-STORE.
    async fn on_data_fragment(&mut self, value: PDataValue) -> Result<(), IngestError> {
        // Never hold more than one instance's limit: past it, the fragments are dropped and the
        // C-STORE is answered with a failure.
        if self.oversize
            || (self.data_bytes.len() + value.data.len()) as u64
                > self.config.limits.max_bytes_per_file
        {
            self.oversize = true;
            self.data_bytes = Vec::new();
        } else {
            self.data_bytes.extend_from_slice(&value.data);
        }
        if !value.is_last {
            return Ok(());
        }
        let Some(command) = self.pending.take() else {
            tracing::warn!("data set without a C-STORE request; ignored");
            self.data_bytes.clear();
            return Ok(());
        };
        let context_id = value.presentation_context_id;
        let dataset = std::mem::take(&mut self.data_bytes);
        let status = if std::mem::take(&mut self.oversize) {
            tracing::warn!(
                limit = self.config.limits.max_bytes_per_file,
                "instance over the size limit; refused"
            );
            STATUS_OUT_OF_RESOURCES
        } else {
            match self.contexts.get(&context_id) {
                None => STATUS_OUT_OF_RESOURCES,
                Some(ts) => {
                    store_instance(
                        &command,
                        ts,
                        &dataset,
                        self.config,
                        self.store,
                        &mut self.receptions,
                    )
                    .await
                }
            }
        };
        let rsp = response(&command, C_STORE_RSP, status)?;
        send_command(&mut self.association, context_id, rsp).await
    }
}
