fn main() {
    let page = std::rc::Rc::new(qmp_web::endpoint::PageUrl::from_window());
    yew::Renderer::<qmp_web::Root>::with_props(qmp_web::root::RootProps { page }).render();
}
