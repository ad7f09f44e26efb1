//! The catalogue: every backend's stable id ([`BackendId`]), what it is,
//! how it delivers and whether several threads may consume from it.

/// How a backend reports an fd that stays ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Once per fire; an fd left ready is not reported again. `--handler
    /// none` is meaningful.
    Edge,
    /// Again and again while ready (level-triggered).
    Level,
    /// Once, then re-armed after the handler; a re-arm of an fd still ready
    /// reports it again at once, so it behaves like level for `--handler none`.
    Oneshot,
}

/// A backend, by its stable id (`epoll-et`, `uring-poll:defer`, ...):
/// parsed once from the command line or the gate's suite
/// ([`BackendId::parse`]), then passed around as this value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum BackendId {
    /// `floor`.
    Floor,
    /// `epoll-lt`.
    EpollLt,
    /// `epoll-et`.
    EpollEt,
    /// `epoll-oneshot`.
    EpollOneshot,
    /// `uring-raw`.
    UringRaw,
    /// `uring-raw:coop`.
    UringRawCoop,
    /// `uring-read`.
    UringRead,
    /// `uring-poll`.
    UringPoll,
    /// `uring-poll:coop`.
    UringPollCoop,
    /// `uring-poll:defer`.
    UringPollDefer,
    /// `uring-poll:defer+batch`.
    UringPollDeferBatch,
    /// `uring-poll:sqpoll`.
    UringPollSqpoll,
    /// `uring-poll:rearm`.
    UringPollRearm,
    /// `epoll-ring`.
    EpollRing,
    /// `epoll-ring:inline`.
    EpollRingInline,
    /// `mio`.
    Mio,
    /// `polling`.
    Polling,
    /// `reference`.
    Reference,
}

impl BackendId {
    /// The library backend behind this id (the ones `compare` drives
    /// through the contract, [`anypoll::AnyPoller`]); `None` for the raw
    /// loops, the peers and the floor.
    pub fn library(self) -> Option<anypoll::Backend> {
        match self {
            BackendId::UringPoll
            | BackendId::UringPollCoop
            | BackendId::UringPollDefer
            | BackendId::UringPollDeferBatch
            | BackendId::UringPollSqpoll
            | BackendId::UringPollRearm
            | BackendId::EpollRing
            | BackendId::EpollRingInline
            | BackendId::Reference => Some(
                self.as_str()
                    .parse()
                    .expect("compare's library ids are anypoll's"),
            ),
            _ => None,
        }
    }

    /// The id as written on the command line and in the JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendId::Floor => "floor",
            BackendId::EpollLt => "epoll-lt",
            BackendId::EpollEt => "epoll-et",
            BackendId::EpollOneshot => "epoll-oneshot",
            BackendId::UringRaw => "uring-raw",
            BackendId::UringRawCoop => "uring-raw:coop",
            BackendId::UringRead => "uring-read",
            BackendId::UringPoll => "uring-poll",
            BackendId::UringPollCoop => "uring-poll:coop",
            BackendId::UringPollDefer => "uring-poll:defer",
            BackendId::UringPollDeferBatch => "uring-poll:defer+batch",
            BackendId::UringPollSqpoll => "uring-poll:sqpoll",
            BackendId::UringPollRearm => "uring-poll:rearm",
            BackendId::EpollRing => "epoll-ring",
            BackendId::EpollRingInline => "epoll-ring:inline",
            BackendId::Mio => "mio",
            BackendId::Polling => "polling",
            BackendId::Reference => "reference",
        }
    }

    /// The backend named `id`, or a message listing the valid ids.
    pub fn parse(id: &str) -> Result<BackendId, String> {
        if let Some(i) = CATALOGUE.iter().find(|b| b.id.as_str() == id) {
            return Ok(i.id);
        }
        let valid: Vec<_> = CATALOGUE.iter().map(|b| b.id.as_str()).collect();
        if NOT_BUILT.iter().any(|(n, _)| *n == id) {
            return Err(format!(
                "backend {id:?} is not built into this compare binary yet (its crate is not part \
                 of the build); available: {}",
                valid.join(", ")
            ));
        }
        Err(format!(
            "unknown backend {id:?}; valid ids: {}",
            valid.join(", ")
        ))
    }

    /// The family it is plotted with.
    pub fn family(self) -> Family {
        use BackendId::*;
        match self {
            Floor | EpollLt | EpollEt | EpollOneshot => Family::Epoll,
            UringRaw | UringRawCoop | UringRead | UringPoll | UringPollCoop | UringPollDefer
            | UringPollDeferBatch | UringPollSqpoll | UringPollRearm => Family::Uring,
            EpollRing | EpollRingInline | Mio | Polling | Reference => Family::Userpoll,
        }
    }

    /// Its catalogue entry.
    pub fn info(self) -> &'static BackendInfo {
        CATALOGUE
            .iter()
            .find(|b| b.id == self)
            .expect("every BackendId has a catalogue entry")
    }
}

impl std::fmt::Display for BackendId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // `pad`, so the tables' widths (`{:<18}`) apply.
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for BackendId {
    type Err = String;

    fn from_str(s: &str) -> Result<BackendId, String> {
        BackendId::parse(s)
    }
}

impl serde::Serialize for BackendId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for BackendId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<BackendId, D::Error> {
        let s = String::deserialize(d)?;
        BackendId::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Backends that are read together: a plot panel each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Family {
    /// The floor and raw epoll.
    Epoll,
    /// io_uring: the hand-written loops and uring-poll's setups.
    Uring,
    /// The userpoll ring and the libraries users reach epoll through.
    Userpoll,
}

impl Family {
    /// Every family, in plot order.
    pub const ALL: [Family; 3] = [Family::Epoll, Family::Uring, Family::Userpoll];

    /// A title for its panel.
    pub fn title(self) -> &'static str {
        match self {
            Family::Epoll => "floor and raw epoll",
            Family::Uring => "io_uring (uring-raw, uring-poll setups)",
            Family::Userpoll => "userpoll ring, mio, polling, reference",
        }
    }
}

/// A backend's entry in the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct BackendInfo {
    /// Stable id, as given to `--backends` and written in the JSON.
    pub id: BackendId,
    /// One line on what it is.
    pub about: &'static str,
    /// How it delivers.
    pub delivery: Delivery,
    /// Whether several threads may consume (`--consumers`).
    pub multi_consumer: bool,
    /// Whether it reads each ready fd itself and hands the data over with
    /// the event ([`Backend::data`](super::Backend::data)): the handler then
    /// makes no `read`, and `--handler none` has no meaning for it.
    pub delivers_data: bool,
}

const CATALOGUE: &[BackendInfo] = &[
    BackendInfo {
        id: BackendId::Floor,
        about: "same writers and handler, readiness passed through shared memory (an index ring, \
                futex when idle), no kernel: the lower bound",
        multi_consumer: false,
        delivery: Delivery::Edge,
        delivers_data: false,
    },
    BackendInfo {
        id: BackendId::EpollLt,
        about: "raw epoll, level-triggered: epoll_wait only",
        multi_consumer: false,
        delivery: Delivery::Level,
        delivers_data: false,
    },
    BackendInfo {
        id: BackendId::EpollEt,
        about: "raw epoll, edge-triggered (EPOLLET): epoll_wait only, never re-armed",
        multi_consumer: true,
        delivery: Delivery::Edge,
        delivers_data: false,
    },
    BackendInfo {
        id: BackendId::EpollOneshot,
        about: "raw epoll, EPOLLONESHOT, re-armed with EPOLL_CTL_MOD after each event",
        multi_consumer: true,
        delivery: Delivery::Oneshot,
        delivers_data: false,
    },
    BackendInfo {
        id: BackendId::UringRaw,
        about: "hand-written multishot POLL_ADD loop on the io-uring crate (SINGLE_ISSUER + \
                DEFER_TASKRUN): the floor for uring-poll:defer's own overhead",
        multi_consumer: false,
        delivery: Delivery::Edge,
        delivers_data: false,
    },
    BackendInfo {
        id: BackendId::UringRawCoop,
        about: "the same hand-written loop on a COOP_TASKRUN + TASKRUN_FLAG ring: the floor for \
                uring-poll:coop's own overhead",
        multi_consumer: false,
        delivery: Delivery::Edge,
        delivers_data: false,
    },
    BackendInfo {
        id: BackendId::UringRead,
        about: "the data path: multishot READ into a provided buffer ring (incremental), same \
                ring as uring-raw; the kernel posts the data, no read call follows an event",
        multi_consumer: false,
        delivery: Delivery::Edge,
        delivers_data: true,
    },
    BackendInfo {
        id: BackendId::UringPoll,
        about: "uring-poll (multishot POLL_ADD behind the userpoll contract), default ring setup",
        multi_consumer: false,
        delivery: Delivery::Edge,
        delivers_data: false,
    },
    BackendInfo {
        id: BackendId::UringPollCoop,
        about: "uring-poll with COOP_TASKRUN | TASKRUN_FLAG (no interrupts; posted at the next \
                kernel entry)",
        multi_consumer: false,
        delivery: Delivery::Edge,
        delivers_data: false,
    },
    BackendInfo {
        id: BackendId::UringPollDefer,
        about: "uring-poll with SINGLE_ISSUER | DEFER_TASKRUN (posted only by the owner's enter)",
        multi_consumer: false,
        delivery: Delivery::Edge,
        delivers_data: false,
    },
    BackendInfo {
        id: BackendId::UringPollDeferBatch,
        about: "uring-poll:defer with batched waits (min_wait 50 us, Linux 6.12): a blocking take \
                sleeps once per batch, adding at most 50 us to an event",
        multi_consumer: false,
        delivery: Delivery::Edge,
        delivers_data: false,
    },
    BackendInfo {
        id: BackendId::UringPollSqpoll,
        about: "uring-poll with SQPOLL (a kernel thread submits and posts; its CPU counts)",
        multi_consumer: false,
        delivery: Delivery::Edge,
        delivers_data: false,
    },
    BackendInfo {
        id: BackendId::UringPollRearm,
        about: "uring-poll re-arming a one-shot POLL_ADD after each event (as monoio, glommio do)",
        multi_consumer: false,
        delivery: Delivery::Oneshot,
        delivers_data: false,
    },
    BackendInfo {
        id: BackendId::EpollRing,
        about: "the userpoll ring (EPOLL_USERPOLL layout) filled by a driver thread from epoll; \
                the consumer takes without a system call while events flow",
        multi_consumer: true,
        delivery: Delivery::Edge,
        delivers_data: false,
    },
    BackendInfo {
        id: BackendId::EpollRingInline,
        about: "the userpoll ring filled inline: wait on an empty ring runs one epoll_wait itself",
        multi_consumer: true,
        delivery: Delivery::Edge,
        delivers_data: false,
    },
    BackendInfo {
        id: BackendId::Mio,
        about: "mio 1 Poll/Registry, edge-triggered, as its users use it",
        multi_consumer: false,
        delivery: Delivery::Edge,
        delivers_data: false,
    },
    BackendInfo {
        id: BackendId::Polling,
        about: "polling 3 Poller in one-shot mode, modify() after each event, as async-io uses it",
        multi_consumer: false,
        delivery: Delivery::Oneshot,
        delivers_data: false,
    },
    BackendInfo {
        id: BackendId::Reference,
        about: "userpoll::reference::Reference (epoll ET + generation table) through the generic \
                userpoll::Poller path",
        multi_consumer: false,
        delivery: Delivery::Edge,
        delivers_data: false,
    },
];

/// Ids of the workspace backends this build does not include, with why
/// (empty now that every crate builds; kept so a backend can be listed
/// before its crate lands).
const NOT_BUILT: &[(&str, &str)] = &[];

/// Every backend built into this binary, in the order runs interleave them.
pub fn catalogue() -> &'static [BackendInfo] {
    CATALOGUE
}

/// Backends the project defines that this build does not include, each
/// with one line on what it is.
pub fn not_built() -> &'static [(&'static str, &'static str)] {
    NOT_BUILT
}
