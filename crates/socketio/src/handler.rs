//! Handlers as async functions with extractors, as in axum: a handler takes any number of
//! arguments that implement [`FromEvent`] (events) or [`FromConnect`] (connections).
//!
//! ```no_run
//! use iolite::{AckSender, Data, SocketRef, State};
//!
//! #[derive(Clone)]
//! struct Db;
//!
//! async fn on_message(socket: SocketRef, Data(text): Data<String>, ack: AckSender, State(_db): State<Db>) {
//!     socket.to("lobby").emit("message", &text).ok();
//!     ack.send(&"stored").ok();
//! }
//! ```

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Waker};

use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::ack::AckSender;
use crate::socket::{Socket, SocketRef};

pub(crate) type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Starts a handler's future on the caller's task, so handlers begin in the order their
/// events arrived, and moves it to its own task only if it has to wait. A handler that
/// awaits (an ack from the same client, a database) does not hold up the next event.
pub(crate) fn run(mut fut: BoxFuture) {
    let mut cx = Context::from_waker(Waker::noop());
    if fut.as_mut().poll(&mut cx).is_pending() {
        // The spawned task polls it again with a real waker.
        tokio::spawn(fut);
    }
}

/// An incoming event, as extractors see it.
pub struct EventContext {
    pub(crate) socket: SocketRef,
    pub(crate) event: String,
    /// The arguments after the event name, binary as placeholders.
    pub(crate) args: Vec<Value>,
    pub(crate) attachments: Vec<Bytes>,
    pub(crate) ack_id: Option<u64>,
}

impl EventContext {
    /// The event name.
    pub fn event(&self) -> &str {
        &self.event
    }
    /// The arguments after the event name.
    pub fn args(&self) -> &[Value] {
        &self.args
    }
}

/// Why an extractor refused an event; the handler is not called and the event is logged.
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// The arguments do not deserialize into the handler's type.
    #[error("invalid event data: {0}")]
    Data(#[from] serde_json::Error),
    /// [`State`] asked for a type that was not registered with the builder.
    #[error("no state of type {0} was registered")]
    MissingState(&'static str),
}

/// Something a handler can take as an argument for an event.
pub trait FromEvent: Sized {
    /// Extracts the value from the event.
    fn from_event(cx: &mut EventContext) -> Result<Self, ExtractError>;
}

/// Something a connect handler can take as an argument.
pub trait FromConnect: Sized {
    /// Extracts the value from the newly connected socket.
    fn from_connect(socket: &SocketRef, auth: &Value) -> Result<Self, ExtractError>;
}

impl FromEvent for SocketRef {
    fn from_event(cx: &mut EventContext) -> Result<Self, ExtractError> {
        Ok(cx.socket.clone())
    }
}

impl FromConnect for SocketRef {
    fn from_connect(socket: &SocketRef, _: &Value) -> Result<Self, ExtractError> {
        Ok(socket.clone())
    }
}

/// The event's arguments deserialized with serde: with exactly one argument, `T` is read
/// from it; otherwise from the array of all arguments (a tuple reads several). In a
/// connect handler: the `auth` payload.
#[derive(Debug, Clone)]
pub struct Data<T>(pub T);

impl<T: DeserializeOwned> FromEvent for Data<T> {
    fn from_event(cx: &mut EventContext) -> Result<Self, ExtractError> {
        let r = match cx.args.as_slice() {
            [one] => {
                T::deserialize(one).or_else(|_| T::deserialize(&Value::Array(cx.args.clone())))
            }
            _ => T::deserialize(&Value::Array(cx.args.clone())),
        };
        Ok(Data(r?))
    }
}

impl<T: DeserializeOwned> FromConnect for Data<T> {
    fn from_connect(_: &SocketRef, auth: &Value) -> Result<Self, ExtractError> {
        Ok(Data(T::deserialize(auth)?))
    }
}

/// All the event's arguments as JSON, binary values as placeholders
/// (`{"_placeholder":true,"num":N}`, see [`Bin`]).
#[derive(Debug, Clone)]
pub struct Args(pub Vec<Value>);

impl FromEvent for Args {
    fn from_event(cx: &mut EventContext) -> Result<Self, ExtractError> {
        Ok(Args(std::mem::take(&mut cx.args)))
    }
}

/// The event's binary attachments, in placeholder order.
#[derive(Debug, Clone)]
pub struct Bin(pub Vec<Bytes>);

impl FromEvent for Bin {
    fn from_event(cx: &mut EventContext) -> Result<Self, ExtractError> {
        Ok(Bin(std::mem::take(&mut cx.attachments)))
    }
}

/// The event name (useful in catch-all handlers).
#[derive(Debug, Clone)]
pub struct Event(pub String);

impl FromEvent for Event {
    fn from_event(cx: &mut EventContext) -> Result<Self, ExtractError> {
        Ok(Event(cx.event.clone()))
    }
}

impl FromEvent for AckSender {
    fn from_event(cx: &mut EventContext) -> Result<Self, ExtractError> {
        Ok(AckSender::new(cx.socket.clone(), cx.ack_id.take()))
    }
}

/// Shared application state registered with
/// [`Builder::with_state`](crate::Builder::with_state), cloned for each handler call.
#[derive(Debug, Clone)]
pub struct State<T>(pub T);

impl<T: Clone + Send + Sync + 'static> FromEvent for State<T> {
    fn from_event(cx: &mut EventContext) -> Result<Self, ExtractError> {
        state(&cx.socket)
    }
}

impl<T: Clone + Send + Sync + 'static> FromConnect for State<T> {
    fn from_connect(socket: &SocketRef, _: &Value) -> Result<Self, ExtractError> {
        state(socket)
    }
}

fn state<T: Clone + Send + Sync + 'static>(socket: &Socket) -> Result<State<T>, ExtractError> {
    socket
        .io_state()
        .get::<T>()
        .cloned()
        .map(State)
        .ok_or(ExtractError::MissingState(std::any::type_name::<T>()))
}

/// An event handler: an async function whose arguments are all [`FromEvent`].
pub trait EventHandler<Args>: Send + Sync + 'static {
    /// Calls the handler, or says why its arguments could not be extracted.
    fn call(&self, cx: EventContext) -> Result<BoxFuture, ExtractError>;
}

/// A connect handler: an async function whose arguments are all [`FromConnect`].
pub trait ConnectHandler<Args>: Send + Sync + 'static {
    /// Calls the handler, or says why its arguments could not be extracted.
    fn call(&self, socket: SocketRef, auth: &Value) -> Result<BoxFuture, ExtractError>;
}

macro_rules! impl_handlers {
    ($($a:ident),*) => {
        impl<F, Fut, $($a,)*> EventHandler<($($a,)*)> for F
        where
            F: Fn($($a,)*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = ()> + Send + 'static,
            $($a: FromEvent,)*
        {
            #[allow(unused_variables, non_snake_case, unused_mut)]
            fn call(&self, mut cx: EventContext) -> Result<BoxFuture, ExtractError> {
                $(let $a = $a::from_event(&mut cx)?;)*
                Ok(Box::pin((self)($($a,)*)))
            }
        }

        impl<F, Fut, $($a,)*> ConnectHandler<($($a,)*)> for F
        where
            F: Fn($($a,)*) -> Fut + Send + Sync + 'static,
            Fut: Future<Output = ()> + Send + 'static,
            $($a: FromConnect,)*
        {
            #[allow(unused_variables, non_snake_case)]
            fn call(&self, socket: SocketRef, auth: &Value) -> Result<BoxFuture, ExtractError> {
                $(let $a = $a::from_connect(&socket, auth)?;)*
                Ok(Box::pin((self)($($a,)*)))
            }
        }
    };
}

impl_handlers!();
impl_handlers!(A1);
impl_handlers!(A1, A2);
impl_handlers!(A1, A2, A3);
impl_handlers!(A1, A2, A3, A4);
impl_handlers!(A1, A2, A3, A4, A5);
impl_handlers!(A1, A2, A3, A4, A5, A6);

pub(crate) trait ErasedEvent: Send + Sync {
    fn call(&self, cx: EventContext) -> Result<BoxFuture, ExtractError>;
}

pub(crate) struct EventBox<H, A>(pub(crate) H, pub(crate) PhantomData<fn(A)>);

impl<H: EventHandler<A>, A: 'static> ErasedEvent for EventBox<H, A> {
    fn call(&self, cx: EventContext) -> Result<BoxFuture, ExtractError> {
        self.0.call(cx)
    }
}

pub(crate) trait ErasedConnect: Send + Sync {
    fn call(&self, socket: SocketRef, auth: &Value) -> Result<BoxFuture, ExtractError>;
}

pub(crate) struct ConnectBox<H, A>(pub(crate) H, pub(crate) PhantomData<fn(A)>);

impl<H: ConnectHandler<A>, A: 'static> ErasedConnect for ConnectBox<H, A> {
    fn call(&self, socket: SocketRef, auth: &Value) -> Result<BoxFuture, ExtractError> {
        self.0.call(socket, auth)
    }
}

/// A registered event handler, cloned out of the socket's lock to be called. A handler that
/// captures nothing (most closures and every `async fn`) is a static reference: an `Arc` of
/// a zero-sized value is still a 16-byte allocation per socket and handler.
#[derive(Clone)]
pub(crate) enum EventFn {
    Shared(Arc<dyn ErasedEvent>),
    Static(&'static dyn ErasedEvent),
}

impl EventFn {
    pub(crate) fn new<H: EventHandler<A>, A: 'static>(handler: H) -> Self {
        if std::mem::size_of::<H>() == 0 && !std::mem::needs_drop::<H>() {
            // Boxing a zero-sized value does not allocate, and it has no drop to skip.
            Self::Static(Box::leak(Box::new(EventBox(handler, PhantomData))))
        } else {
            Self::Shared(Arc::new(EventBox(handler, PhantomData)))
        }
    }
}

impl std::ops::Deref for EventFn {
    type Target = dyn ErasedEvent;

    fn deref(&self) -> &Self::Target {
        match self {
            Self::Shared(h) => &**h,
            Self::Static(h) => *h,
        }
    }
}

pub(crate) type ConnectFn = Arc<dyn ErasedConnect>;

#[cfg(test)]
mod tests {
    use super::EventFn;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    struct Noisy;
    impl Drop for Noisy {
        fn drop(&mut self) {}
    }

    #[test]
    fn only_handlers_without_state_or_drop_are_static() {
        assert!(matches!(EventFn::new(|| async {}), EventFn::Static(_)));
        let n = Arc::new(AtomicUsize::new(0));
        let counting = move || {
            n.fetch_add(1, Ordering::Relaxed);
            async {}
        };
        assert!(matches!(EventFn::new(counting), EventFn::Shared(_)));
        // Zero-sized but with a drop: leaking it would skip the drop.
        let noisy = Noisy;
        let dropping = move || {
            let _keep = &noisy;
            async {}
        };
        assert_eq!(std::mem::size_of_val(&dropping), 0);
        assert!(matches!(EventFn::new(dropping), EventFn::Shared(_)));
    }
}
