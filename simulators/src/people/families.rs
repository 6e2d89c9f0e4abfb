//! The handsets behind the numbers: a family member answers an alarm text as their habit says
//! (goes, cannot, reads and stays silent, phone off); a volunteer's phone takes a text and leaves
//! the answer to the app.

use std::collections::HashMap;

use crate::smsc::{Handsets, Reaction};
use crate::world::FamilyHabit;

/// Every family phone of the world and its owner's habit.
pub struct Families {
    habits: HashMap<String, FamilyHabit>,
}

impl Families {
    /// The handsets of `habits` (phone → habit).
    pub fn new(habits: HashMap<String, FamilyHabit>) -> Families {
        Families { habits }
    }
}

impl Handsets for Families {
    fn receive(&self, to: &str, _text: &str) -> Reaction {
        match self.habits.get(to) {
            Some(FamilyHabit::Goes(delay)) => Reaction {
                delivered: true,
                reply: Some((*delay, "1".into())),
            },
            Some(FamilyHabit::Cannot(delay)) => Reaction {
                delivered: true,
                reply: Some((*delay, "2".into())),
            },
            Some(FamilyHabit::Silent) => Reaction {
                delivered: true,
                reply: None,
            },
            Some(FamilyHabit::Unreachable) => Reaction {
                delivered: false,
                reply: None,
            },
            // A responder's phone: delivered; they answer in the app.
            None => Reaction {
                delivered: true,
                reply: None,
            },
        }
    }
}
