//! (tests of this part are written with it)
