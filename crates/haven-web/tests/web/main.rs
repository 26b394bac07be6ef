//! haven-web's tests: the API at its edges (`api`), and notification
//! channels against real receivers (`channels`).

mod api;
mod channels;
