//! [`RcByPtr`]: an `Rc` for props, equal only to itself.

use std::rc::Rc;

/// An `Rc` compared by pointer: equal when it is the same allocation, so comparing props
/// never walks a large reply, a long log or a deep type. Two equal values in separate
/// allocations compare unequal (one extra render, never a missed one).
#[derive(Debug)]
pub struct RcByPtr<T>(pub Rc<T>);

impl<T> Clone for RcByPtr<T> {
    fn clone(&self) -> Self {
        RcByPtr(self.0.clone())
    }
}

impl<T> PartialEq for RcByPtr<T> {
    fn eq(&self, other: &Self) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_only_to_the_same_allocation() {
        let a = RcByPtr(Rc::new(vec![1, 2]));
        assert!(a == a.clone());
        assert!(a != RcByPtr(Rc::new(vec![1, 2])));
    }
}
