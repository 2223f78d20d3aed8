//! A socket's event handlers, shared among the sockets of a namespace that have the same.
//!
//! The connect handler registers the same handlers on every socket, and most capture
//! nothing (they are static references, see [`EventFn`]). Such a list is the same for every
//! socket; once a socket's connect handler has registered its handlers, its list is swapped
//! for the namespace's copy when they are equal: one pointer per socket instead of a list
//! each (48 bytes per handler).

use std::sync::{Arc, Mutex};

use crate::event_name::EventName;
use crate::handler::EventFn;

type Entry = (EventName, EventFn);

/// A namespace's list that its sockets share, once one has it.
pub(crate) type CommonHandlers = Mutex<Option<Arc<[Entry]>>>;

/// The handlers of one socket, by event name.
pub(crate) enum HandlerList {
    /// The socket's own list: while its connect handler runs, or when it has handlers
    /// with state.
    Own(Vec<Entry>),
    /// A list of static handlers, the same as other sockets'.
    Shared(Arc<[Entry]>),
}

impl Default for HandlerList {
    fn default() -> Self {
        Self::Own(Vec::new())
    }
}

impl HandlerList {
    fn entries(&self) -> &[Entry] {
        match self {
            Self::Own(v) => v,
            Self::Shared(s) => s,
        }
    }

    /// The handler of `event`, if any.
    pub(crate) fn get(&self, event: &str) -> Option<EventFn> {
        self.entries()
            .iter()
            .find(|(e, _)| e.is(event))
            .map(|(_, h)| h.clone())
    }

    /// Sets the handler of `event` (replacing an earlier one). A shared list becomes the
    /// socket's own again.
    pub(crate) fn set(&mut self, event: &str, h: EventFn) {
        if let Self::Shared(s) = self {
            *self = Self::Own(s.to_vec());
        }
        let Self::Own(list) = self else {
            return;
        };
        match list.iter_mut().find(|(e, _)| e.is(event)) {
            Some((_, old)) => *old = h,
            None => list.push((EventName::new(event), h)),
        }
    }

    /// Swaps this list for `common` if they are equal, or makes it the new `common` if it
    /// is only static handlers. Keeps it as it is otherwise.
    pub(crate) fn share(&mut self, common: &CommonHandlers) {
        let Self::Own(list) = self else {
            return;
        };
        if list.is_empty() || !list.iter().all(|(_, h)| matches!(h, EventFn::Static(_))) {
            return;
        }
        let mut common = common.lock().unwrap_or_else(|e| e.into_inner());
        match &*common {
            Some(c) if same(c, list) => *self = Self::Shared(c.clone()),
            _ => {
                let shared: Arc<[Entry]> = std::mem::take(list).into();
                *common = Some(shared.clone());
                *self = Self::Shared(shared);
            }
        }
    }
}

/// Whether two lists of static handlers have the same names and handlers in the same order.
fn same(a: &[Entry], b: &[Entry]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|((na, ha), (nb, hb))| {
            na.as_bytes() == nb.as_bytes()
                && match (ha, hb) {
                    // The same handler type (data and vtable): a zero-sized handler's data
                    // pointer says nothing on its own.
                    (EventFn::Static(x), EventFn::Static(y)) => std::ptr::eq(*x, *y),
                    _ => false,
                }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SocketRef;

    fn list(entries: &[(&str, EventFn)]) -> HandlerList {
        let mut l = HandlerList::default();
        for (name, h) in entries {
            l.set(name, h.clone());
        }
        l
    }

    fn shared_ptr(l: &HandlerList) -> Option<*const Entry> {
        match l {
            HandlerList::Shared(s) => Some(s.as_ptr()),
            HandlerList::Own(_) => None,
        }
    }

    #[test]
    fn equal_static_lists_are_shared_and_others_are_not() {
        let a = EventFn::new(|| async {});
        let b = EventFn::new(|_: SocketRef| async {});
        let common = Mutex::new(None);

        let mut first = list(&[("chat", a.clone()), ("join", b.clone())]);
        first.share(&common);
        let mut second = list(&[("chat", a.clone()), ("join", b.clone())]);
        second.share(&common);
        assert!(shared_ptr(&first).is_some());
        assert_eq!(shared_ptr(&first), shared_ptr(&second));
        assert!(second.get("chat").is_some() && second.get("join").is_some());
        assert!(second.get("leave").is_none());

        // Another handler under the same name, or the names swapped: not the same list.
        let mut other = list(&[("chat", b.clone()), ("join", a.clone())]);
        other.share(&common);
        assert_ne!(shared_ptr(&other), shared_ptr(&first));
        let mut swapped = list(&[("join", b.clone()), ("chat", a.clone())]);
        swapped.share(&common);
        assert_ne!(shared_ptr(&swapped), shared_ptr(&first));

        // A handler with state keeps the list the socket's own.
        let n = std::sync::Arc::new(1);
        let with_state = EventFn::new(move || {
            let _ = &n;
            async {}
        });
        let mut own = list(&[("chat", a.clone()), ("count", with_state)]);
        own.share(&common);
        assert!(shared_ptr(&own).is_none());
        assert!(own.get("count").is_some());
    }

    #[test]
    fn setting_a_handler_on_a_shared_list_changes_only_that_socket() {
        let a = EventFn::new(|| async {});
        let common = Mutex::new(None);
        let mut first = list(&[("chat", a.clone())]);
        first.share(&common);
        let mut second = list(&[("chat", a.clone())]);
        second.share(&common);
        second.set("late", a.clone());
        assert!(shared_ptr(&second).is_none());
        assert!(second.get("late").is_some() && second.get("chat").is_some());
        assert!(first.get("late").is_none());
        assert!(shared_ptr(&first).is_some());
    }
}
