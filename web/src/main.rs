fn main() {
    yew::Renderer::<qmp_web::Root>::new().render();
}
